#!/usr/bin/env python3
"""Writes the JSON Schemas calplan's tests check its Calico resources against, from Calico's own
CRD field definitions (the openAPIV3Schema of crd.projectcalico.org IPPool, BGPPeer and
BGPConfiguration, as `../shared/calico-crds/` holds them), wrapped as projectcalico.org/v3
resources. Calico publishes no CRD for the v3 `Node`; node.schema.json is written by hand from
`libcalico-go/lib/apis/v3/node.go`'s field definitions and is not generated.

CEL rules (`x-kubernetes-validations`) have no JSON Schema equivalent; calplan's validation
rules check them (docs/rules.md).

    schemas/calico/generate.py ../shared/calico-crds
"""

import json
import os
import sys

import yaml

KINDS = {
    "crd.projectcalico.org_ippools.yaml": ("IPPool", "ippool.schema.json"),
    "crd.projectcalico.org_bgppeers.yaml": ("BGPPeer", "bgppeer.schema.json"),
    "crd.projectcalico.org_bgpconfigurations.yaml": ("BGPConfiguration", "bgpconfiguration.schema.json"),
}


# Kubernetes object metadata as calicoctl accepts it: a DNS-1123 name, string labels and
# annotations, and the fields the server fills in.
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "resourceVersion": {"type": "string"},
        "uid": {"type": "string"},
        "creationTimestamp": {"type": ["string", "null"]},
    },
}


def clean(schema):
    """Keeps what JSON Schema means the same way; drops Kubernetes extensions."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key.startswith("x-kubernetes-") or key == "description":
                continue
            if key == "format" and value in ("int32", "int64", "cidr"):
                continue
            out[key] = clean(value)
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [clean(item) for item in schema]
    return schema


def main():
    source = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    for crd_file, (kind, out_file) in KINDS.items():
        with open(os.path.join(source, crd_file)) as file:
            crd = yaml.safe_load(file)
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://calplan.dev/schemas/calico/{out_file}",
            "title": f"projectcalico.org/v3 {kind}, from Calico's CRD field definitions",
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "additionalProperties": False,
            "properties": {
                "apiVersion": {"const": "projectcalico.org/v3"},
                "kind": {"const": kind},
                "metadata": METADATA,
                "spec": clean(spec),
            },
        }
        with open(os.path.join(here, out_file), "w") as file:
            json.dump(schema, file, indent=2, sort_keys=True)
            file.write("\n")


if __name__ == "__main__":
    main()
