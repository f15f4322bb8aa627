#!/usr/bin/env python3
"""Generates an N-node cluster described by a handful of node rules, and its node inventory.

The cluster: racks of 50 nodes, each on its own /24, labelled `rack` and `zone` (four zones,
racks taken in turn); one AS per zone (a rule each); two `node-role=infra` nodes per rack may
reflect, and two per zone do, for one reflector cluster chosen by rule (`perLabel: zone`: 8
reflectors, every node their client); every node autodetects its address by `can-reach`. The
intent lists no node: they come from the inventory.

    bench/gen_rules.py 5000 intent.yaml nodes.yaml
"""

import sys


def main() -> None:
    count = int(sys.argv[1])
    intent_path, nodes_path = sys.argv[2], sys.argv[3]
    zones = ["a", "b", "c", "d"]
    intent = f"""apiVersion: calplan/v1
kind: ClusterIntent
metadata:
  name: rules-{count}
spec:
  calicoVersion: "3.30"
  datastore: etcdv3
  nodeAddressAutodetection:
    ipv4: can-reach=10.0.0.1
  bgp:
    asNumber: 64512
    nodeToNodeMesh: false
    routeReflectors:
      - clusterID: 244.0.0.1
        reflectors: {{nodeSelector: node-role == 'infra', perLabel: zone, count: 2}}
  pools:
    - {{name: default-ipv4-ippool, cidr: 10.128.0.0/10, blockSize: 26, ipipMode: CrossSubnet, natOutgoing: true}}
  nodeRules:
"""
    for index, zone in enumerate(zones):
        intent += f"    - {{name: zone-{zone}, nodeSelector: zone == '{zone}', asNumber: {65001 + index}}}\n"
    with open(intent_path, "w") as out:
        out.write(intent)
    lines = []
    for node in range(count):
        rack, slot = divmod(node, 50)
        labels = f"rack: r{rack}, zone: {zones[rack % len(zones)]}"
        if slot < 2:
            labels += ", node-role: infra"
        lines.append(
            f"- {{name: r{rack}-n{slot}, ipv4Address: 10.{rack // 250}.{rack % 250}.{slot + 10}/24, labels: {{{labels}}}}}"
        )
    with open(nodes_path, "w") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
