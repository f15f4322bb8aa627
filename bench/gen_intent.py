#!/usr/bin/env python3
"""Generates a calplan intent for an N-node cluster, or that cluster's Calico export, for
benchmarks.

The default shape (`--shape reflectors`, issue #13's): racks of 40 nodes, each rack on its own
/24; one route-reflector cluster of two reflectors (the first two nodes of its first rack) per
1,000 nodes, and every node a client of every reflector through Calico's documented BGPPeer
(`peerSelector: route-reflector == 'true'`), so 20,000 nodes have 40 reflectors and about
800,000 sessions; the node-to-node mesh off; four pools (a /26 pool for every node, a /27 IPIP
CrossSubnet pool for zone b's racks, a pool for the storage rack, a disabled one); two routers
(FRR with ECMP static routes via the first two reflectors, and one speaking BGP with the
reflectors).

`--shape rack-groups` is the earlier shape the lab figures were measured with: racks of 50
nodes, one reflector cluster per ten racks serving only its racks (`clients`), reflectors
meshed, three pools, one router.

`--export` writes what `calicoctl get bgpconfigurations,ippools,bgppeers,nodes -o yaml` would
print for the same cluster (one `List`, with the metadata the datastore adds), for
`calplan import --current` and `calplan plan --current`.

    bench/gen_intent.py 5000 > /tmp/5000.yaml
    bench/gen_intent.py 20000 --export > /tmp/20000-export.yaml
    bench/gen_intent.py 100 --shape rack-groups --mesh --node-agent bird    # on the full mesh, on BIRD 2

`--mesh` (rack-groups shape) leaves the mesh on and names no reflectors (the cluster before a
mesh → reflectors migration); `--reflectors-at SLOT` makes the nodes in SLOT and SLOT+1 of each
group's first rack the reflectors instead of 0 and 1 (the cluster before its reflectors move);
`--node-agent bird` says the nodes run BIRD 2 on calplan's files, as the lab's do.
"""

import argparse
import uuid

AS_NUMBER = 64512
REFLECTOR_LABEL = "route-reflector"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=100)
    parser.add_argument("--shape", choices=["reflectors", "rack-groups"], default="reflectors")
    parser.add_argument("--export", action="store_true", help="the cluster's Calico resources instead of the intent")
    parser.add_argument("--mesh", action="store_true", help="the node-to-node mesh on, no reflectors (rack-groups shape)")
    parser.add_argument("--reflectors-at", type=int, default=0, metavar="SLOT", help="reflectors in SLOT and SLOT+1")
    parser.add_argument("--node-agent", choices=["calico-node", "bird"], help="spec.nodeAgent")
    args = parser.parse_args()
    if args.mesh and args.shape != "rack-groups":
        parser.error("--mesh needs --shape rack-groups (the default shape's router peers with the reflectors)")
    cluster = reflectors(args.count, args.reflectors_at) if args.shape == "reflectors" else rack_groups(args.count, args.reflectors_at)
    cluster.mesh = args.mesh
    cluster.agent = args.node_agent
    print(export(cluster) if args.export else intent(cluster))


class Cluster:
    def __init__(self, count: int, rack_size: int) -> None:
        self.count = count
        self.rack_size = rack_size
        self.reflector_clusters: list[tuple[str, list[str], str | None]] = []  # (ID, nodes, clients)
        self.pools: list[dict] = []
        self.routers: list[str] = []
        self.node_labels = lambda rack: {}
        self.mesh = False
        self.agent: str | None = None

    def nodes(self):
        """(name, address with its /24, labels) of every node."""
        for index in range(self.count):
            rack, slot = divmod(index, self.rack_size)
            yield node_name(rack, slot), f"{address(rack, slot + 10)}/24", self.node_labels(rack)


def reflectors(count: int, slot: int) -> Cluster:
    cluster = Cluster(count, 40)
    per_cluster = 1000 // cluster.rack_size
    for group in range((count + 999) // 1000):
        first_rack = group * per_cluster
        cluster.reflector_clusters.append((cluster_id(group), [node_name(first_rack, slot), node_name(first_rack, slot + 1)], None))
    cluster.node_labels = lambda rack: {
        "rack": f"r{rack}",
        "zone": "b" if rack % 2 else "a",
        **({"role": "storage"} if rack == 0 else {}),
    }
    cluster.pools = [
        {"name": "default-ipv4", "cidr": "100.64.0.0/10", "blockSize": 26, "natOutgoing": True, "nodeSelector": "all()"},
        {"name": "zone-b", "cidr": "172.16.0.0/12", "blockSize": 27, "ipipMode": "CrossSubnet", "natOutgoing": True,
         "nodeSelector": "zone == 'b'"},
        {"name": "storage", "cidr": "192.168.0.0/16", "blockSize": 26, "natOutgoing": True, "nodeSelector": "role == 'storage'"},
        {"name": "retired", "cidr": "198.18.0.0/15", "disabled": True},
    ]
    cluster.routers = [
        "    - name: border-1",
        "      platform: frr",
        f"      address: {address(0, 250)}/24",
        "      staticRoutes:",
        f"        - {{destination: pools, via: [{node_name(0, 0)}, {node_name(0, 1)}]}}",
        f"        - {{destination: services, via: [{node_name(0, 0)}]}}",
        "    - name: border-2",
        "      platform: frr",
        f"      address: {address(0, 251)}/24",
        "      bgp: {asNumber: 65001, peerWith: routeReflectors}",
    ]
    return cluster


def rack_groups(count: int, slot: int) -> Cluster:
    cluster = Cluster(count, 50)
    racks = (count + 49) // 50
    for group in range((racks + 9) // 10):
        first_rack = group * 10
        cluster.reflector_clusters.append(
            (cluster_id(group), [node_name(first_rack, slot), node_name(first_rack, slot + 1)], f"rack-group == 'g{group}'")
        )
    cluster.node_labels = lambda rack: {"rack": f"r{rack}", "rack-group": f"g{rack // 10}", "zone": "b" if rack % 2 else "a"}
    cluster.pools = [
        {"name": "default-ipv4", "cidr": "100.64.0.0/10", "blockSize": 26, "natOutgoing": True, "nodeSelector": "all()"},
        {"name": "zone-b", "cidr": "172.16.0.0/12", "blockSize": 24, "ipipMode": "CrossSubnet", "natOutgoing": True,
         "nodeSelector": "zone == 'b'"},
        {"name": "retired", "cidr": "198.18.0.0/15", "disabled": True},
    ]
    cluster.routers = [
        "    - name: border-1",
        "      platform: frr",
        f"      address: {address(0, 250)}/24",
        "      staticRoutes:",
        f"        - {{destination: pools, via: [{node_name(0, 0)}, {node_name(0, 1)}]}}",
        f"        - {{destination: services, via: [{node_name(0, 0)}]}}",
    ]
    return cluster


def flow(mapping: dict) -> str:
    """A YAML flow mapping; strings with spaces or quotes are double-quoted."""
    def value(item):
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, str) and any(c in item for c in " '()"):
            return f'"{item}"'
        return str(item)
    return "{" + ", ".join(f"{key}: {value(item)}" for key, item in mapping.items()) + "}"


def intent(cluster: Cluster) -> str:
    out = []
    w = out.append
    w("apiVersion: calplan/v1")
    w("kind: ClusterIntent")
    w("metadata:")
    w(f"  name: bench-{cluster.count}")
    w("spec:")
    w('  calicoVersion: "3.30"')
    w("  datastore: etcdv3")
    if cluster.agent:
        w(f"  nodeAgent: {cluster.agent}")
    w("  nodeAddressAutodetection:")
    w("    ipv4: interface=eth0")
    w("  serviceClusterIPs: [10.96.0.0/12]")
    w("  maxPodsPerNode: 60")
    w("  bgp:")
    w(f"    asNumber: {AS_NUMBER}")
    w(f"    nodeToNodeMesh: {'true' if cluster.mesh else 'false'}")
    w("    advertiseServiceClusterIPs: true")
    if not cluster.mesh:
        w("    routeReflectors:")
    for identifier, members, clients in [] if cluster.mesh else cluster.reflector_clusters:
        w(f"      - clusterID: {identifier}")
        w(f"        nodes: [{', '.join(members)}]")
        if clients:
            w(f'        clients: "{clients}"')
    w("  pools:")
    for pool in cluster.pools:
        w(f"    - {flow(pool)}")
    w("  nodes:")
    for name, ipv4, labels in cluster.nodes():
        w(f"    - {{name: {name}, ipv4Address: {ipv4}, labels: {flow(labels)}}}")
    w("  routers:")
    out.extend(cluster.routers)
    return "\n".join(out)


def export(cluster: Cluster) -> str:
    """The cluster as calicoctl lists it: what calplan compiles the intent to, plus the
    metadata the datastore adds. Only the reflectors' design without `clients` is written
    (the default shape)."""
    if cluster.mesh or any(clients for _, _, clients in cluster.reflector_clusters):
        raise SystemExit("--export writes the default shape only")
    reflector_of = {name: identifier for identifier, members, _ in cluster.reflector_clusters for name in members}
    revision = iter(range(1000, 10**9))

    def item(kind: str, name: str, spec: str, labels: dict | None = None) -> str:
        meta = f"name: {name}, resourceVersion: '{next(revision)}', uid: {uuid.uuid5(uuid.NAMESPACE_DNS, kind + name)}, "
        meta += "creationTimestamp: '2024-05-01T10:00:00Z'"
        if labels:
            meta += f", labels: {flow(labels)}"
        return f"- apiVersion: projectcalico.org/v3\n  kind: {kind}\n  metadata: {{{meta}}}\n  spec: {spec}"

    items = [
        item("BGPConfiguration", "default",
             f"{{asNumber: {AS_NUMBER}, logSeverityScreen: Info, nodeToNodeMeshEnabled: false, "
             "serviceClusterIPs: [{cidr: 10.96.0.0/12}]}")
    ]
    for pool in cluster.pools:
        spec = {"cidr": pool["cidr"], "blockSize": pool["blockSize"] if "blockSize" in pool else 26,
                "ipipMode": pool.get("ipipMode", "Never"), "vxlanMode": "Never", "natOutgoing": pool.get("natOutgoing", False),
                "nodeSelector": pool.get("nodeSelector", "all()")}
        if pool.get("disabled"):
            spec["disabled"] = True
        items.append(item("IPPool", pool["name"], flow(spec)))
    items.append(item("BGPPeer", "peer-with-route-reflectors", f'{{nodeSelector: all(), peerSelector: "{REFLECTOR_LABEL} == \'true\'"}}'))
    items.append(item("BGPPeer", "router-border-2",
                      f"{{nodeSelector: \"{REFLECTOR_LABEL} == 'true'\", peerIP: {address(0, 251)}, asNumber: 65001}}"))
    for name, ipv4, labels in cluster.nodes():
        bgp = {"ipv4Address": ipv4}
        if name in reflector_of:
            bgp["routeReflectorClusterID"] = reflector_of[name]
            labels = {**labels, REFLECTOR_LABEL: "true"}
        labels = {**labels, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        items.append(item("Node", name, f"{{bgp: {flow(bgp)}, orchRefs: [{{nodeName: {name}, orchestrator: k8s}}]}}", labels))
    return "apiVersion: projectcalico.org/v3\nkind: List\nitems:\n" + "\n".join(items) + "\nmetadata: {resourceVersion: ''}"


def cluster_id(group: int) -> str:
    return f"244.0.{group // 250}.{group % 250 + 1}"


def node_name(rack: int, slot: int) -> str:
    return f"r{rack:03d}-n{slot:02d}.bench.example"


def address(rack: int, host: int) -> str:
    return f"10.{rack // 250}.{rack % 250}.{host}"


if __name__ == "__main__":
    main()
