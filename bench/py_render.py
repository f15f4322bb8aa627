#!/usr/bin/env python3
"""The baseline calplan's compile is measured against: the BIRD configs and kernel route tables
of an intent, rendered the way a team would otherwise do it, with Python and Jinja2.

It understands the subset of the intent bench/gen_intent.py writes: route-reflector clusters
whose `clients` selector is `key == 'value'`, pools with `all()` or `key == 'value'` selectors,
one block per selected node per enabled pool, the mesh on or off. It does no validation.

    bench/py_render.py INTENT.yaml OUTDIR
"""

import ipaddress
import os
import re
import sys

import jinja2
import yaml

BIRD = jinja2.Template(
    """# BIRD 2 configuration for {{ node.name }}
router id {{ node.ip }};

protocol device { scan time 2; }
protocol direct { ipv4; interface -"cali*", -"kube-ipvs*", "*"; }

protocol static {
  ipv4;
{% for block in own %}
  route {{ block }} blackhole;
{% endfor %}
}

function calico_aggr() {
{% for block in own %}
  if ( net = {{ block }} ) then { accept; }
  if ( net ~ {{ block }} ) then { reject; }
{% endfor %}
}

filter calico_export_to_bgp_peers {
  calico_aggr();
{% for pool in pools %}
  if ( net ~ {{ pool.cidr }} ) then { accept; }
{% endfor %}
  reject;
}

protocol kernel {
  ipv4 { import none; export all; };
  learn; persist; scan time 2; merge paths on;
}

template bgp bgp_template {
  local as {{ asn }};
  ipv4 { import all; export filter calico_export_to_bgp_peers; add paths on; };
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}
{% for peer in peers %}

protocol bgp {{ peer.name }} from bgp_template {
  neighbor {{ peer.ip }} as {{ asn }};
  source address {{ node.ip }};
{% if peer.client %}
  rr client;
  rr cluster id {{ node.cluster }};
{% endif %}
}
{% endfor %}
""",
    trim_blocks=True,
    lstrip_blocks=True,
)


def matches(selector, labels):
    if selector in (None, "", "all()"):
        return True
    found = re.fullmatch(r"\s*([\w./-]+)\s*==\s*'([^']*)'\s*", selector)
    if not found:
        raise SystemExit(f"unsupported selector: {selector}")
    return labels.get(found.group(1)) == found.group(2)


def main():
    intent, out = sys.argv[1], sys.argv[2]
    with open(intent) as file:
        spec = yaml.safe_load(file)["spec"]
    bgp = spec.get("bgp", {})
    asn = bgp.get("asNumber", 64512)
    mesh = bgp.get("nodeToNodeMesh", True)
    nodes = []
    for item in spec["nodes"]:
        nodes.append({
            "name": item["name"],
            "ip": item["ipv4Address"].split("/")[0],
            "labels": item.get("labels", {}),
            "cluster": None,
            "clients": None,
        })
    by_name = {node["name"]: node for node in nodes}
    for cluster in bgp.get("routeReflectors", []):
        for name in cluster["nodes"]:
            by_name[name]["cluster"] = cluster["clusterID"]
            by_name[name]["clients"] = cluster.get("clients", "all()")
    reflectors = [node for node in nodes if node["cluster"]]
    pools = [pool for pool in spec["pools"] if not pool.get("disabled")]
    blocks = {node["name"]: [] for node in nodes}
    owner = []
    for pool in pools:
        network = ipaddress.ip_network(pool["cidr"])
        subnets = network.subnets(new_prefix=pool.get("blockSize", 26))
        for node in nodes:
            if matches(pool.get("nodeSelector"), node["labels"]):
                block = str(next(subnets))
                blocks[node["name"]].append(block)
                owner.append((block, node["ip"]))
    owner.sort()
    for node in nodes:
        peers = []
        if mesh and not node["cluster"]:
            peers += [{"ip": other["ip"], "client": False} for other in nodes if other is not node and not other["cluster"]]
        if node["cluster"]:
            for other in nodes:
                if other is node:
                    continue
                if other["cluster"]:
                    peers.append({"ip": other["ip"], "client": other["cluster"] != node["cluster"]})
                elif matches(node["clients"], other["labels"]):
                    peers.append({"ip": other["ip"], "client": True})
        else:
            peers += [{"ip": rr["ip"], "client": False} for rr in reflectors if matches(rr["clients"], node["labels"])]
        for peer in peers:
            peer["name"] = "Node_" + peer["ip"].replace(".", "_")
        directory = os.path.join(out, "nodes", node["name"])
        os.makedirs(directory, exist_ok=True)
        own = blocks[node["name"]]
        with open(os.path.join(directory, "bird.cfg"), "w") as file:
            file.write(BIRD.render(node=node, own=own, pools=pools, peers=peers, asn=asn))
        own_set = set(own)
        with open(os.path.join(directory, "routes"), "w") as file:
            for block, ip in owner:
                if block in own_set:
                    file.write(f"blackhole {block} proto bird\n")
                else:
                    file.write(f"{block} via {ip} proto bird\n")


if __name__ == "__main__":
    main()
