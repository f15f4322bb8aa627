#!/usr/bin/env python3
"""Writes the JSON Schemas calplan's tests check its Calico resources against, from Calico's own
CRD field definitions (the openAPIV3Schema of crd.projectcalico.org IPPool, BGPPeer,
BGPConfiguration and BGPFilter), wrapped as projectcalico.org/v3 resources. The CRDs are read
from a directory (`../shared/calico-crds/`); one it lacks (BGPFilter) is read from a clone of
projectcalico/calico at a release tag, `libcalico-go/config/crd/`. Calico publishes no CRD for
the v3 `Node`; node.schema.json is written by hand from `libcalico-go/lib/apis/v3/node.go`'s
field definitions and is not generated.

CEL rules (`x-kubernetes-validations`) have no JSON Schema equivalent; calplan's validation
rules check them (docs/rules.md).

    schemas/calico/generate.py ../shared/calico-crds [CALICO_CLONE TAG]
    schemas/calico/generate.py ../shared/calico-crds /work/.mirror/projectcalico+calico/repo v3.31.7
"""

import json
import os
import subprocess
import sys

import yaml

KINDS = {
    "crd.projectcalico.org_ippools.yaml": ("IPPool", "ippool.schema.json"),
    "crd.projectcalico.org_bgppeers.yaml": ("BGPPeer", "bgppeer.schema.json"),
    "crd.projectcalico.org_bgpconfigurations.yaml": ("BGPConfiguration", "bgpconfiguration.schema.json"),
    "crd.projectcalico.org_bgpfilters.yaml": ("BGPFilter", "bgpfilter.schema.json"),
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


def read_crd(source, clone, tag, crd_file):
    """The CRD from the directory, else from the clone at the tag."""
    path = os.path.join(source, crd_file)
    if os.path.exists(path):
        with open(path) as file:
            return yaml.safe_load(file)
    if not clone:
        sys.exit(f"{crd_file} is not in {source}: give a clone of projectcalico/calico and a tag to read it from")
    text = subprocess.run(
        ["git", "-C", clone, "show", f"{tag}:libcalico-go/config/crd/{crd_file}"], capture_output=True, text=True, check=True
    ).stdout
    return yaml.safe_load(text)


def main():
    source = sys.argv[1]
    clone, tag = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else (None, None)
    here = os.path.dirname(os.path.abspath(__file__))
    for crd_file, (kind, out_file) in KINDS.items():
        crd = read_crd(source, clone, tag, crd_file)
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
