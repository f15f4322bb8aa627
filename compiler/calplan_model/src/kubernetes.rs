//! What calico-node's confd reads from Kubernetes besides Calico's datastore, when the current
//! state gives it: which Secrets exist (for BGP passwords) and the Services with their
//! endpoints (for per-Service routes). Each part is `None` when no source gave it, and the
//! renders then keep what they do without it.
//!
//! Secrets are known by name and key only: no value is ever kept here, so none can reach an
//! artifact, a plan or a state. The one thing a reader looks at in a value is whether it is
//! empty, because confd renders no password for an empty one.
//!
//! Per-Service routes follow `confd/pkg/backends/calico/routes.go` (`routeGenerator`) of each
//! release: 3.28 to 3.30 read `v1` `Endpoints`, 3.31 reads `discovery.k8s.io/v1`
//! `EndpointSlice`s; 3.30 adds single external and ingress addresses of `Cluster` Services;
//! 3.31 advertises every Service with a ready endpoint when LoadBalancer aggregation is off.

use calplan_calico::Release;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The Kubernetes objects confd reads, as far as the current state gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedKubernetes {
    /// Every Secret's keys with a non-empty value, by namespace and name.
    pub secrets: Option<BTreeMap<(String, String), BTreeSet<String>>>,
    pub services: Option<ObservedServices>,
}

impl ObservedKubernetes {
    /// Whether confd finds a non-empty value at a Secret's key in the namespace calico-node
    /// runs in; `None` when no Secrets were read.
    pub fn secret_exists(&self, namespace: &str, name: &str, key: &str) -> Option<bool> {
        let secrets = self.secrets.as_ref()?;
        Some(secrets.get(&(namespace.to_string(), name.to_string())).is_some_and(|keys| keys.contains(key)))
    }

    /// Adds what another source read; a later Secret or Service replaces one of the same name.
    pub fn extend(&mut self, other: ObservedKubernetes) {
        if let Some(secrets) = other.secrets {
            self.secrets.get_or_insert_with(BTreeMap::new).extend(secrets);
        }
        if let Some(services) = other.services {
            let combined = self.services.get_or_insert_with(ObservedServices::default);
            combined.services.extend(services.services);
            combined.endpoints.extend(services.endpoints);
            combined.slices.extend(services.slices);
        }
    }
}

/// Services, `Endpoints` and `EndpointSlice`s, each by namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedServices {
    pub services: BTreeMap<(String, String), Service>,
    pub endpoints: BTreeMap<(String, String), Endpoints>,
    pub slices: BTreeMap<(String, String), EndpointSlice>,
}

/// The parts of a `v1` `Service` confd reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// `spec.type`; Kubernetes defaults it to `ClusterIP`.
    pub service_type: String,
    pub cluster_ip: String,
    pub cluster_ips: Vec<String>,
    pub ip_families: Vec<String>,
    pub external_ips: Vec<String>,
    pub load_balancer_ip: String,
    /// `status.loadBalancer.ingress[].ip`.
    pub ingress_ips: Vec<String>,
    pub external_traffic_policy: String,
}

/// A `v1` `Endpoints`: the ready addresses of its subsets (`notReadyAddresses` are not read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub addresses: Vec<EndpointAddress>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointAddress {
    pub ip: String,
    pub node_name: Option<String>,
}

/// A `discovery.k8s.io/v1` `EndpointSlice`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSlice {
    /// The `kubernetes.io/service-name` label.
    pub service: Option<String>,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: String,
    pub endpoints: Vec<SliceEndpoint>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SliceEndpoint {
    /// `conditions.ready`; absent means ready.
    pub ready: Option<bool>,
    pub node_name: Option<String>,
}

/// The BGP configuration confd's route generator works with.
pub struct ServiceAdvertisement<'a> {
    pub release: Release,
    /// The node confd renders for (`NODENAME`).
    pub node: &'a str,
    /// The node carries `node.kubernetes.io/exclude-from-external-load-balancers: "true"`.
    pub excluded: bool,
    /// Cluster IPs are advertised (`serviceClusterIPs` set).
    pub cluster_ips: bool,
    /// `serviceExternalIPs` and `serviceLoadBalancerIPs`.
    pub external_ips: Vec<IpNet>,
    pub load_balancer_ips: Vec<IpNet>,
    /// Calico 3.31's `serviceLoadBalancerAggregation` is enabled (the default).
    pub aggregate_load_balancers: bool,
}

impl ServiceAdvertisement<'_> {
    /// The `/32` and `/128` routes confd adds for the node's Services, as confd writes them
    /// (`addFullIPLength`), sorted and without repeats. Empty when confd runs no route
    /// generator (no service range of any kind configured).
    pub fn routes(&self, services: &ObservedServices) -> BTreeSet<String> {
        let mut routes = BTreeSet::new();
        if !self.cluster_ips && self.external_ips.is_empty() && self.load_balancer_ips.is_empty() {
            return routes;
        }
        for ((namespace, name), service) in &services.services {
            if self.advertise(namespace, name, service, services) {
                routes.extend(self.routes_of(service));
            }
        }
        routes
    }

    /// `getAllRoutesForService`.
    fn routes_of(&self, service: &Service) -> Vec<String> {
        let mut addresses: Vec<&str> = Vec::new();
        if self.cluster_ips {
            if self.release >= Release::V3_31 {
                addresses.extend(service.cluster_ips.iter().map(String::as_str));
            } else {
                addresses.push(&service.cluster_ip);
            }
        }
        addresses.extend(service.external_ips.iter().map(String::as_str).filter(|ip| allowed(ip, &self.external_ips)));
        addresses
            .extend(service.ingress_ips.iter().map(String::as_str).filter(|ip| !ip.is_empty() && allowed(ip, &self.load_balancer_ips)));
        addresses.into_iter().map(|ip| if ip.contains(':') { format!("{ip}/128") } else { format!("{ip}/32") }).collect()
    }

    /// `advertiseThisService`.
    fn advertise(&self, namespace: &str, name: &str, service: &Service, services: &ObservedServices) -> bool {
        if self.excluded {
            return false;
        }
        if !matches!(service.service_type.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
            return false;
        }
        if service.cluster_ip.is_empty() || service.cluster_ip == "None" {
            return false;
        }
        let local = service.external_traffic_policy == "Local";
        if service.external_traffic_policy == "Cluster" {
            let single_load_balancer = service.service_type == "LoadBalancer"
                && if self.release >= Release::V3_30 {
                    std::iter::once(&service.load_balancer_ip).chain(&service.ingress_ips).any(|ip| single(ip, &self.load_balancer_ips))
                } else {
                    single(&service.load_balancer_ip, &self.load_balancer_ips)
                };
            if single_load_balancer {
                return true;
            }
            if self.release >= Release::V3_30 && service.external_ips.iter().any(|ip| single(ip, &self.external_ips)) {
                return true;
            }
        }
        if self.release >= Release::V3_31 {
            if !local && self.aggregate_load_balancers {
                return false;
            }
            let families: BTreeSet<&str> = service.ip_families.iter().map(String::as_str).collect();
            let key = |slice: &&EndpointSlice| slice.service.as_deref() == Some(name);
            return services
                .slices
                .iter()
                .filter(|((slice_namespace, _), slice)| slice_namespace == namespace && key(slice))
                .filter(|(_, slice)| families.contains(slice.address_type.as_str()))
                .flat_map(|(_, slice)| &slice.endpoints)
                .filter(|endpoint| endpoint.ready != Some(false))
                .any(|endpoint| !local || endpoint.node_name.as_deref() == Some(self.node));
        }
        if !local {
            return false;
        }
        let v6 = service.cluster_ip.contains(':');
        services.endpoints.get(&(namespace.to_string(), name.to_string())).is_some_and(|endpoints| {
            endpoints.addresses.iter().any(|address| address.node_name.as_deref() == Some(self.node) && address.ip.contains(':') == v6)
        })
    }
}

/// `isAllowedExternalIP` / `isAllowedLoadBalancerIP`: inside one of the ranges.
fn allowed(ip: &str, ranges: &[IpNet]) -> bool {
    ip.parse::<IpAddr>().is_ok_and(|ip| ranges.iter().any(|range| range.contains(&ip)))
}

/// `isSingleExternalIP` / `isSingleLoadBalancerIP`: inside a range of a single address.
fn single(ip: &str, ranges: &[IpNet]) -> bool {
    ip.parse::<IpAddr>().is_ok_and(|ip| ranges.iter().any(|range| range.prefix_len() == range.max_prefix_len() && range.contains(&ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_service(cluster_ip: &str) -> Service {
        Service {
            service_type: "LoadBalancer".into(),
            cluster_ip: cluster_ip.into(),
            cluster_ips: vec![cluster_ip.into()],
            ip_families: vec![if cluster_ip.contains(':') { "IPv6" } else { "IPv4" }.into()],
            external_traffic_policy: "Local".into(),
            ..Service::default()
        }
    }

    fn advertisement(release: Release) -> ServiceAdvertisement<'static> {
        ServiceAdvertisement {
            release,
            node: "kube-master",
            excluded: false,
            cluster_ips: true,
            external_ips: Vec::new(),
            load_balancer_ips: Vec::new(),
            aggregate_load_balancers: true,
        }
    }

    fn key(name: &str) -> (String, String) {
        ("default".to_string(), name.to_string())
    }

    #[test]
    fn a_local_service_is_advertised_only_where_it_has_an_endpoint_of_its_family() {
        let mut services = ObservedServices::default();
        services.services.insert(key("here"), local_service("10.101.0.101"));
        services.services.insert(key("elsewhere"), local_service("10.101.0.102"));
        services.services.insert(key("v6-with-v4-endpoint"), local_service("fd00:96::25"));
        let endpoint = |ip: &str, node: &str| EndpointAddress { ip: ip.into(), node_name: Some(node.into()) };
        services.endpoints.insert(key("here"), Endpoints { addresses: vec![endpoint("192.168.2.1", "kube-master")] });
        services.endpoints.insert(key("elsewhere"), Endpoints { addresses: vec![endpoint("192.168.2.2", "kube-node-1")] });
        services.endpoints.insert(key("v6-with-v4-endpoint"), Endpoints { addresses: vec![endpoint("192.168.2.1", "kube-master")] });
        let slice = |service: &str, family: &str, node: &str| EndpointSlice {
            service: Some(service.into()),
            address_type: family.into(),
            endpoints: vec![SliceEndpoint { ready: None, node_name: Some(node.into()) }],
        };
        services.slices.insert(key("here-1"), slice("here", "IPv4", "kube-master"));
        services.slices.insert(key("elsewhere"), slice("elsewhere", "IPv4", "kube-node-1"));
        services.slices.insert(key("v6-with-v4-endpoint"), slice("v6-with-v4-endpoint", "IPv4", "kube-master"));
        for release in Release::ALL {
            let routes: Vec<String> = advertisement(release).routes(&services).into_iter().collect();
            assert_eq!(routes, ["10.101.0.101/32"], "{release:?}");
        }
        let excluded = ServiceAdvertisement { excluded: true, ..advertisement(Release::V3_31) };
        assert!(excluded.routes(&services).is_empty());
        let no_ranges = ServiceAdvertisement { cluster_ips: false, ..advertisement(Release::V3_31) };
        assert!(no_ranges.routes(&services).is_empty());
    }

    #[test]
    fn an_unready_endpoint_does_not_count_from_3_31() {
        let mut services = ObservedServices::default();
        services.services.insert(key("s"), local_service("10.101.0.101"));
        services.slices.insert(
            key("s-1"),
            EndpointSlice {
                service: Some("s".into()),
                address_type: "IPv4".into(),
                endpoints: vec![SliceEndpoint { ready: Some(false), node_name: Some("kube-master".into()) }],
            },
        );
        assert!(advertisement(Release::V3_31).routes(&services).is_empty());
    }

    #[test]
    fn secrets_are_unknown_until_read() {
        let mut observed = ObservedKubernetes::default();
        assert_eq!(observed.secret_exists("kube-system", "s", "k"), None);
        observed.secrets = Some(BTreeMap::from([(("kube-system".into(), "s".into()), BTreeSet::from(["k".to_string()]))]));
        assert_eq!(observed.secret_exists("kube-system", "s", "k"), Some(true));
        assert_eq!(observed.secret_exists("kube-system", "s", "other"), Some(false));
        assert_eq!(observed.secret_exists("calico-system", "s", "k"), Some(false));
    }
}
