//! The names Calico's API knows: its `projectcalico.org/v3` kinds, and the fields of the
//! resources calplan reads, across the releases calplan knows (3.28 to 3.32, from
//! `api/pkg/apis/projectcalico/v3` and `libcalico-go/lib/apis/v3`).
//!
//! Calico decodes resources with Go's `encoding/json`, which ignores a field it does not know:
//! the seed's `bolockSize: 24` left its pool at the default `/26` without a word. Reading
//! current state, calplan tells such a field (which Calico ignored) from a field of a release or
//! a feature calplan does not model (which Calico honoured), by these lists.

/// Every kind of `projectcalico.org/v3`, in the releases above.
pub const KINDS: &[&str] = &[
    "BGPConfiguration",
    "BGPFilter",
    "BGPPeer",
    "BlockAffinity",
    "CalicoNodeStatus",
    "ClusterInformation",
    "FelixConfiguration",
    "GlobalNetworkPolicy",
    "GlobalNetworkSet",
    "HostEndpoint",
    "IPAMBlock",
    "IPAMConfig",
    "IPAMConfiguration",
    "IPAMHandle",
    "IPPool",
    "IPReservation",
    "KubeControllersConfiguration",
    "NetworkPolicy",
    "NetworkSet",
    "Node",
    "Profile",
    "StagedGlobalNetworkPolicy",
    "StagedKubernetesNetworkPolicy",
    "StagedNetworkPolicy",
    "Tier",
    "WorkloadEndpoint",
];

/// The fields of any resource.
pub const OBJECT: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

/// Kubernetes' `ObjectMeta`, which every resource's `metadata` is.
pub const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "clusterName",
];

pub const IP_POOL_SPEC: &[&str] = &[
    "cidr",
    "vxlanMode",
    "ipipMode",
    "natOutgoing",
    "disabled",
    "disableBGPExport",
    "blockSize",
    "nodeSelector",
    "namespaceSelector",
    "ipip",
    "nat-outgoing",
    "allowedUses",
    "assignmentMode",
];

pub const BGP_PEER_SPEC: &[&str] = &[
    "node",
    "nodeSelector",
    "peerIP",
    "asNumber",
    "localASNumber",
    "peerSelector",
    "keepOriginalNextHop",
    "nextHopMode",
    "password",
    "sourceAddress",
    "maxRestartTime",
    "keepaliveTime",
    "numAllowedLocalASNumbers",
    "ttlSecurity",
    "reachableBy",
    "filters",
    "localWorkloadSelector",
    "reversePeering",
];

pub const BGP_CONFIGURATION_SPEC: &[&str] = &[
    "logSeverityScreen",
    "nodeToNodeMeshEnabled",
    "asNumber",
    "serviceLoadBalancerIPs",
    "serviceExternalIPs",
    "serviceClusterIPs",
    "serviceLoadBalancerAggregation",
    "communities",
    "prefixAdvertisements",
    "listenPort",
    "nodeMeshPassword",
    "nodeMeshMaxRestartTime",
    "bindMode",
    "ignoredInterfaces",
    "localWorkloadPeeringIPV4",
    "localWorkloadPeeringIPV6",
    "ipv4NormalRoutePriority",
    "ipv6NormalRoutePriority",
    "programClusterRoutes",
];

pub const NODE_SPEC: &[&str] = &[
    "bgp",
    "ipv4VXLANTunnelAddr",
    "vxlanTunnelMACAddr",
    "ipv6VXLANTunnelAddr",
    "vxlanTunnelMACAddrV6",
    "orchRefs",
    "wireguard",
    "addresses",
    "interfaces",
];

pub const NODE_BGP_SPEC: &[&str] = &["asNumber", "ipv4Address", "ipv6Address", "ipv4IPIPTunnelAddr", "routeReflectorClusterID"];

pub const BGP_FILTER_SPEC: &[&str] = &["exportV4", "importV4", "exportV6", "importV6"];

/// One BGPFilter rule; 3.32 adds `peerType`, `communities`, `asPathPrefix`, `priority` and
/// `operations`, which calplan does not model.
pub const BGP_FILTER_RULE: &[&str] = &[
    "cidr",
    "prefixLength",
    "source",
    "interface",
    "matchOperator",
    "action",
    "peerType",
    "communities",
    "asPathPrefix",
    "priority",
    "operations",
];

pub const BGP_FILTER_PREFIX_LENGTH: &[&str] = &["min", "max"];

/// An entry of `serviceClusterIPs`, `serviceExternalIPs` or `serviceLoadBalancerIPs`.
pub const SERVICE_IP_BLOCK: &[&str] = &["cidr"];

/// `password` and `nodeMeshPassword`: `{secretKeyRef: {name, key, optional}}`.
pub const PASSWORD: &[&str] = &["secretKeyRef"];
pub const SECRET_KEY_REF: &[&str] = &["name", "key", "optional"];
