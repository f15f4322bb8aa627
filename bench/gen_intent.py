#!/usr/bin/env python3
"""Generates a calplan intent for an N-node cluster, for benchmarks.

The cluster: racks of up to 50 nodes, each rack on its own /24; one route-reflector cluster per
ten racks (two reflectors each, in the first rack of the group, serving that group's racks);
the reflectors meshed with each other; the node-to-node mesh off; three pools (a default one
for every node, one for racks in zone b with another block size, one disabled); a border router
with ECMP static routes via the first two reflectors.

    bench/gen_intent.py 5000 > /tmp/5000.yaml
    bench/gen_intent.py 100 --mesh --node-agent bird    # the same nodes on the full mesh, on BIRD 2

`--mesh` leaves the mesh on and names no reflectors (the cluster before a mesh → reflectors
migration); `--reflectors-at SLOT` makes the nodes in SLOT and SLOT+1 of each group's first
rack the reflectors instead of 0 and 1 (the cluster before its reflectors move);
`--node-agent bird` says the nodes run BIRD 2 on calplan's files, as the lab's do.
"""

import sys


def main() -> None:
    arguments = sys.argv[1:]
    mesh = "--mesh" in arguments
    agent = arguments[arguments.index("--node-agent") + 1] if "--node-agent" in arguments else None
    slot = int(arguments[arguments.index("--reflectors-at") + 1]) if "--reflectors-at" in arguments else 0
    numbers = [argument for argument in arguments[:1] if argument.isdigit()]
    count = int(numbers[0]) if numbers else 100
    racks = (count + 49) // 50
    out = []
    w = out.append
    w("apiVersion: calplan/v1")
    w("kind: ClusterIntent")
    w("metadata:")
    w(f"  name: bench-{count}")
    w("spec:")
    w('  calicoVersion: "3.30"')
    w("  datastore: etcdv3")
    if agent:
        w(f"  nodeAgent: {agent}")
    w("  nodeAddressAutodetection:")
    w("    ipv4: interface=eth0")
    w("  serviceClusterIPs: [10.96.0.0/12]")
    w("  maxPodsPerNode: 60")
    w("  bgp:")
    w("    asNumber: 64512")
    w(f"    nodeToNodeMesh: {'true' if mesh else 'false'}")
    w("    advertiseServiceClusterIPs: true")
    groups = (racks + 9) // 10
    if not mesh:
        w("    routeReflectors:")
    for group in range(0 if mesh else groups):
        first_rack = group * 10
        w(f"      - clusterID: 244.0.{group // 250}.{group % 250 + 1}")
        w(f"        nodes: [{node_name(first_rack, slot)}, {node_name(first_rack, slot + 1)}]")
        w(f"        clients: \"rack-group == 'g{group}'\"")
    w("  pools:")
    w("    - {name: default-ipv4, cidr: 100.64.0.0/10, blockSize: 26, natOutgoing: true, nodeSelector: all()}")
    w("    - {name: zone-b, cidr: 172.16.0.0/12, blockSize: 24, ipipMode: CrossSubnet, natOutgoing: true, nodeSelector: \"zone == 'b'\"}")
    w("    - {name: retired, cidr: 198.18.0.0/15, disabled: true}")
    w("  nodes:")
    for index in range(count):
        rack, slot = divmod(index, 50)
        zone = "b" if rack % 2 else "a"
        w(
            f"    - {{name: {node_name(rack, slot)}, ipv4Address: {address(rack, slot + 10)}/24, "
            f"labels: {{rack: r{rack}, rack-group: g{rack // 10}, zone: {zone}}}}}"
        )
    w("  routers:")
    w("    - name: border-1")
    w("      platform: frr")
    w(f"      address: {address(0, 250)}/24")
    w("      staticRoutes:")
    w(f"        - {{destination: pools, via: [{node_name(0, 0)}, {node_name(0, 1)}]}}")
    w(f"        - {{destination: services, via: [{node_name(0, 0)}]}}")
    print("\n".join(out))


def node_name(rack: int, slot: int) -> str:
    return f"r{rack:03d}-n{slot:02d}.bench.example"


def address(rack: int, host: int) -> str:
    return f"10.{rack // 250}.{rack % 250}.{host}"


if __name__ == "__main__":
    main()
