//! `calico/*.yaml`: the Calico resources, one file per kind, as `calicoctl apply -f` takes
//! them; `calico/calico-node-env.yaml`, the calico-node DaemonSet settings as a patch; and, for
//! `installation: operator`, `calico/installation.yaml`: the Tigera operator's Installation as
//! far as calplan manages it (its pool list).

use crate::{Artifact, Context, Target, TemplateError};
use calplan_calico::resources::{Resource, ResourceKind};
use calplan_model::{AutodetectionMethod, Datastore, Model};

pub struct Calico;

impl Target for Calico {
    fn name(&self) -> &'static str {
        "calico"
    }

    fn render(&self, context: &Context) -> Result<Vec<Artifact>, TemplateError> {
        let analysis = context.analysis;
        let mut artifacts = Vec::new();
        for (kind, file, source) in [
            (ResourceKind::IpPool, "ippools.yaml", "spec.pools"),
            (ResourceKind::BgpConfiguration, "bgpconfigurations.yaml", "spec.bgp, spec.nodes[].bgpConfiguration"),
            (ResourceKind::BgpFilter, "bgpfilters.yaml", "spec.bgp.filters"),
            (ResourceKind::BgpPeer, "bgppeers.yaml", "spec.bgp.peers, spec.bgp.routeReflectors, spec.routers"),
            (ResourceKind::Node, "nodes.yaml", "spec.nodes"),
        ] {
            let resources: Vec<&Resource> = analysis.resources.iter().filter(|resource| resource.kind() == kind).collect();
            if resources.is_empty() {
                continue;
            }
            let documents: Vec<String> = resources.iter().map(|resource| resource.to_yaml()).collect();
            artifacts.push(Artifact::new(format!("calico/{file}"), documents.join("---\n"), source));
        }
        artifacts.push(Artifact::new("calico/calico-node-env.yaml", node_env(&analysis.model), "spec"));
        for (rule, text) in rule_env(&analysis.model) {
            artifacts.push(Artifact::new(format!("calico/calico-node-env-{rule}.yaml"), text, "spec.nodeRules"));
        }
        if analysis.model.installation == calplan_model::Installation::Operator {
            let pools: Vec<&calplan_calico::resources::IpPool> = analysis.resources.pools().collect();
            let installation = calplan_calico::installation::skeleton(&pools);
            let text = serde_saphyr::to_string(&installation).expect("the Installation serializes as YAML");
            artifacts.push(Artifact::new("calico/installation.yaml", text, "spec.installation, spec.pools"));
        }
        Ok(artifacts)
    }
}

/// For each node rule that sets an address autodetection method, the calico-node environment
/// of the nodes it covers: calico-node reads the method from its environment only, so nodes that
/// detect their addresses differently run a DaemonSet of their own. The rule's name is a
/// DNS-1123 subdomain (checked in lowering), so it is safe in a file name.
pub fn rule_env(model: &Model) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for rule in &model.node_rules.rules {
        let mut env: Vec<(&str, String)> = Vec::new();
        if let Some(ipv4) = &rule.autodetection.ipv4 {
            env.push(("IP_AUTODETECTION_METHOD", ipv4.value.to_string()));
        }
        if let Some(ipv6) = &rule.autodetection.ipv6 {
            env.push(("IP6", "autodetect".to_string()));
            env.push(("IP6_AUTODETECTION_METHOD", ipv6.value.to_string()));
        }
        if env.is_empty() {
            continue;
        }
        env.sort_by(|a, b| a.0.cmp(b.0));
        let entries: Vec<serde_json::Value> =
            env.into_iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})).collect();
        let patch = serde_json::json!({
            "spec": {"template": {"spec": {"containers": [{"name": "calico-node", "env": entries}]}}}
        });
        let body = serde_saphyr::to_string(&patch).expect("patch serializes");
        let names: Vec<&str> = rule.nodes.iter().map(|id| model.node(*id).name.value.as_str()).collect();
        let shown = if names.len() > 3 { format!("{} and {} more", names[..3].join(", "), names.len() - 3) } else { names.join(", ") };
        files.push((
            rule.name.value.clone(),
            format!(
                "# calico-node settings for the nodes of rule `{}` (the nodes whose labels match the rule's selector; now {}),\n# for the calico-node DaemonSet that runs on them, as a strategic-merge patch\n{body}",
                rule.name.value,
                if names.is_empty() { "none".to_string() } else { shown }
            ),
        ));
    }
    files
}

/// The calico-node environment the intent implies, as a strategic-merge patch of the
/// DaemonSet.
pub fn node_env(model: &Model) -> String {
    let mut env: Vec<(&str, String)> = vec![
        ("CALICO_NETWORKING_BACKEND", "bird".to_string()),
        (
            "DATASTORE_TYPE",
            match model.datastore {
                Datastore::Etcdv3 => "etcdv3",
                Datastore::Kubernetes => "kubernetes",
            }
            .to_string(),
        ),
    ];
    let method = |method: &AutodetectionMethod| method.to_string();
    env.push(("IP_AUTODETECTION_METHOD", model.autodetection.ipv4.as_ref().map_or_else(|| "first-found".to_string(), |m| method(m))));
    if let Some(ipv6) = &model.autodetection.ipv6 {
        env.push(("IP6", "autodetect".to_string()));
        env.push(("IP6_AUTODETECTION_METHOD", method(ipv6)));
    }
    if let Some(pool) = model.pools.iter().find(|pool| pool.is_ipv4() && !*pool.disabled) {
        env.push(("CALICO_IPV4POOL_CIDR", pool.cidr.to_string()));
        env.push(("CALICO_IPV4POOL_BLOCK_SIZE", pool.block_size.to_string()));
        env.push(("CALICO_IPV4POOL_IPIP", pool.ipip_mode.as_str().to_string()));
        env.push(("CALICO_IPV4POOL_VXLAN", pool.vxlan_mode.as_str().to_string()));
        env.push(("CALICO_IPV4POOL_NAT_OUTGOING", pool.nat_outgoing.to_string()));
        env.push(("CALICO_IPV4POOL_NODE_SELECTOR", pool.node_selector.text.clone()));
    }
    if let Some(pool) = model.pools.iter().find(|pool| !pool.is_ipv4() && !*pool.disabled) {
        env.push(("CALICO_IPV6POOL_CIDR", pool.cidr.to_string()));
        env.push(("CALICO_IPV6POOL_BLOCK_SIZE", pool.block_size.to_string()));
        env.push(("CALICO_IPV6POOL_VXLAN", pool.vxlan_mode.as_str().to_string()));
        env.push(("CALICO_IPV6POOL_NAT_OUTGOING", pool.nat_outgoing.to_string()));
    }
    if let Some(router_id) = &model.bgp.router_id {
        env.push(("CALICO_ROUTER_ID", router_id.to_string()));
    }
    env.sort_by(|a, b| a.0.cmp(b.0));
    let entries: Vec<serde_json::Value> = env.into_iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})).collect();
    let patch = serde_json::json!({
        "spec": {"template": {"spec": {"containers": [{"name": "calico-node", "env": entries}]}}}
    });
    let body = serde_saphyr::to_string(&patch).expect("patch serializes");
    format!(
        "# calico-node settings for cluster `{}`, as a strategic-merge patch:\n#   kubectl -n kube-system patch daemonset calico-node --patch-file calico-node-env.yaml\n{body}",
        model.name.value
    )
}
