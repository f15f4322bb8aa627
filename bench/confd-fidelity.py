#!/usr/bin/env python3
"""Compares calplan's `bird-calico.cfg` / `bird6-calico.cfg` with what Calico's own confd test
suite expects, fixture by fixture, for one or more Calico releases.

Calico's suite (`confd/tests/` in projectcalico/calico) loads resources with calicoctl, runs
confd for one node and compares confd's render with `compiled_templates/<fixture>/bird*.cfg`.
This tool replays that suite without Calico's binaries:

1. It runs the suite's own shell (`test_suite_common.sh`) under bash with calicoctl, kubectl,
   confd and the comparison replaced by recorders, so every fixture's datastore contents, the
   node confd renders for (`NODENAME`), its environment (`CALICO_ROUTER_ID`) and the Secrets
   that exist are known at the moment the suite compares. The fixtures driven by
   `input.yaml` and those the shell writes inline (BGPFilters, communities, TTL security,
   reachableBy, passwords, ...) come out the same way.
2. For each fixture it writes that state into a real etcd in Calico's etcdv3 layout (resources
   as calicoctl stores them, the suite's IPAM block affinities from `mock_data/etcd/block`,
   and the `ClusterInformation` calico-node writes, which names the release), and what confd
   reads from Kubernetes itself into `kubernetes.yaml`, shaped as `kubectl get
   secrets,services,endpoints,endpointslices -A -o yaml` prints it (the Secrets that exist,
   the Services and endpoints the fixture applied), and Felix's endpoint status files into
   `endpoint-status/NODE/`, then runs `calplan import --current etcd://... --current
   kubernetes.yaml [--current endpoint-status]` and `calplan compile INTENT --current
   etcd://... --current kubernetes.yaml [--current endpoint-status] --target bird-calico
   --node NODE`.
3. It compares calplan's render with Calico's expected one: byte for byte except blank lines
   (the suite itself compares with `diff --ignore-blank-lines`), with confd's `include`d files
   put in place and calplan's two marker comments for them taken out; failing that,
   semantically (comments and layout ignored, BIRD's top-level items compared by name, the
   statements of a protocol as a set, of a function or filter in order).

Passwords: calplan never keeps a Secret's value (it reads only names and keys) and renders
`<Secret NAME key KEY>` where confd renders the value; the comparison maps each value the suite
stored back to that placeholder.

Usage:
    bench/confd-fidelity.py --calico CHECKOUT                      # a checkout of projectcalico/calico
    bench/confd-fidelity.py --calico MIRROR.git --tag v3.31.7 ...  # a (bare) clone, one run per tag
Options: --calplan PATH (default target/debug/calplan), --only SUBSTRING, --out DIR (diffs and
a summary.json), --etcd PATH, --export DIR (see below). Exit status 0 when every fixture
matches at least semantically.

--export DIR writes calplan's own test cases for the fixtures that match byte for byte:
DIR/<release>/<fixture, `/` as `.`>/intent.yaml (the intent `calplan import` wrote for the
fixture's datastore) and expected/nodes/<node>/bird{,6}-calico.cfg (calplan's render, which
equals Calico's), kubernetes.yaml when the fixture has Secrets or Services (values replaced by
a stand-in), endpoint-status/<node>/ when it has Felix's endpoint status files, plus
DIR/ipam.yaml, the block affinities every fixture shares. A fixture
whose expected render is the same in several releases is exported once, for the first tag
given: pass the newest first. `tests/it/confd.rs` replays these cases through a real etcd.
"""

import argparse
import base64
import copy
import difflib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Resource kinds calicoctl stores under /calico/resources/v3/projectcalico.org/<plural>/.
PLURALS = {
    "BGPConfiguration": "bgpconfigurations",
    "BGPPeer": "bgppeers",
    "BGPFilter": "bgpfilters",
    "IPPool": "ippools",
    "Node": "nodes",
    "WorkloadEndpoint": "workloadendpoints",
}

# What calicoctl accepts as a kind on its command line.
KIND_NAMES = {alias: kind for kind, plural in PLURALS.items() for alias in (kind.lower(), plural)}
KIND_NAMES["bgpconfig"] = "BGPConfiguration"

# The recorders the suite's shell runs with. Every call of a Calico or Kubernetes tool becomes
# one line of $EVENTS, tab-separated; heredocs are saved to files the line names.
STUBS = r'''
set +e
capture() { local file; file=$(mktemp "$WORK/capture/XXXXXXXX"); cat > "$file"; echo "$file"; }
event() { local IFS=$'\t'; echo "$*" >> "$EVENTS"; }
calicoctl() {
    [ "$1" = "--allow-version-mismatch" ] && shift
    local verb=$1; shift
    case "$verb" in
        apply|create|replace)
            [ "$1" = "-f" ] || return 0
            if [ "$2" = "-" ]; then event apply "$(capture)"; else event apply "$2"; fi ;;
        delete)
            if [ "$1" = "-f" ]; then event delete-file "$2"; else event delete "$1" "$2"; fi ;;
    esac
    return 0
}
kubectl() {
    local verb=$1; shift
    case "$verb" in
        apply|create|replace)
            [ "$1" = "-f" ] || return 0
            if [ "$2" = "-" ]; then event kube-apply "$(capture)"; else event kube-apply "$2"; fi ;;
        delete)
            if [ "$1" = "-f" ]; then event kube-delete-file "$2"; else event kube-delete "$1" "$2"; fi ;;
    esac
    return 0
}
confd() { event confd "$NODENAME" "${CALICO_ROUTER_ID:-}"; return 0; }
etcdctl() { return 0; }
typha() { return 0; }
sleep() { return 0; }
kill() { return 0; }
pkill() { return 0; }
disown() { return 0; }
ps() { return 0; }
'''

# What runs after the suite's functions are defined: its own entry point, the recorders for
# what the suite compares and for the helpers that wait on processes.
DRIVER = r'''
start_typha() { return 0; }
kill_typha() { return 0; }
expect_peerings() { return 0; }
test_confd_templates() {
    local status="$CONFD_ETC/endpoint-status" listing=""
    # Copies of Felix's endpoint status files as they are now: the suite removes them later.
    local copies="$WORK/capture/status-$RANDOM$RANDOM"
    if [ -d "$status" ]; then
        mkdir -p "$copies"
        listing=$(cd "$status" && for f in *; do [ -f "$f" ] && cp "$f" "$copies/$f" && printf '%s\t' "$copies/$f"; done)
    fi
    event expect "$1" "$listing"
}
export NODENAME=kube-master
execute_test_suite
'''


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# 1. Replaying the suite's shell.


def go_string(value):
    """A YAML scalar as Go's YAML-to-JSON conversion and a string field read it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


class GoYamlLoader(yaml.SafeLoader):
    """YAML as Calico's Go YAML reads it: no YAML 1.1 base-60 integers (`5663:12` is text)."""


GoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
GoYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def load_documents(path):
    with open(path) as handle:
        text = handle.read()
    documents = []
    for document in yaml.load_all(text, Loader=GoYamlLoader):
        if not isinstance(document, dict):
            continue
        if document.get("kind", "").endswith("List") and isinstance(document.get("items"), list):
            documents.extend(item for item in document["items"] if isinstance(item, dict))
        else:
            documents.append(document)
    return documents


def normalise_resource(document):
    """What calicoctl stores for a document: name, labels as strings, `spec: null` as `{}`."""
    metadata = document.get("metadata") or {}
    resource = {
        "kind": document["kind"],
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": go_string(metadata.get("name"))},
        "spec": document.get("spec") or {},
    }
    if metadata.get("namespace"):
        resource["metadata"]["namespace"] = go_string(metadata["namespace"])
    labels = metadata.get("labels")
    if labels:
        resource["metadata"]["labels"] = {go_string(k): go_string(v) for k, v in labels.items()}
    return resource


class SuiteState:
    def __init__(self):
        self.resources = {}  # (kind, name) -> resource
        self.secrets = {}  # (name, key) -> value
        self.kube = []  # other Kubernetes objects applied (Services, Endpoints)
        self.node = "kube-master"
        self.router_id = ""

    def snapshot(self, fixture, status_files):
        endpoint_status = []
        for path in status_files:
            try:
                with open(path) as handle:
                    endpoint_status.append(json.load(handle))
            except (OSError, ValueError):
                pass
        return {
            "fixture": fixture,
            "node": self.node,
            "router_id": self.router_id,
            "resources": copy.deepcopy(sorted(self.resources.values(), key=lambda r: (r["kind"], r["metadata"]["name"]))),
            "secrets": dict(self.secrets),
            "kube": copy.deepcopy(self.kube),
            "endpoint_status": endpoint_status,
        }


def replay(events_path, tests_dir, mode):
    """The suite's events, replayed into the datastore states it compares against. With the
    Kubernetes datastore a Kubernetes Node is a Calico Node (its labels, no BGP settings until
    calicoctl gives it some), starting from the suite's `mock_data/kdd/nodes.yaml`."""
    state = SuiteState()
    kubernetes = mode == "kubernetes"

    def kube_node(document):
        name = go_string(document["metadata"]["name"])
        if ("Node", name) not in state.resources:
            resource = normalise_resource({"kind": "Node", "metadata": document["metadata"], "spec": {}})
            state.resources[("Node", name)] = resource

    if kubernetes:
        for document in load_documents(os.path.join(tests_dir, "mock_data", "kdd", "nodes.yaml")):
            kube_node(document)
    snapshots = []
    with open(events_path) as handle:
        lines = handle.read().splitlines()
    for line in lines:
        fields = line.split("\t")
        op, args = fields[0], fields[1:]
        if op == "apply":
            for document in load_documents(args[0]):
                kind = document.get("kind")
                if kind in PLURALS:
                    resource = normalise_resource(document)
                    state.resources[(kind, resource["metadata"]["name"])] = resource
        elif op == "delete-file":
            for document in load_documents(args[0]):
                name = go_string((document.get("metadata") or {}).get("name"))
                state.resources.pop((document.get("kind"), name), None)
        elif op == "delete":
            kind = KIND_NAMES.get(args[0].lower(), args[0])
            state.resources.pop((kind, args[1]), None)
            if kind == "Node":
                # calicoctl deletes a node's node-specific BGPPeers with it.
                for key, resource in list(state.resources.items()):
                    if key[0] == "BGPPeer" and resource["spec"].get("node") == args[1]:
                        del state.resources[key]
        elif op == "kube-apply":
            for document in load_documents(args[0]):
                if document.get("kind") == "Secret":
                    name = go_string(document["metadata"]["name"])
                    for key in [k for k in state.secrets if k[0] == name]:
                        del state.secrets[key]
                    for key, value in (document.get("stringData") or {}).items():
                        state.secrets[(name, go_string(key))] = go_string(value)
                    for key, value in (document.get("data") or {}).items():
                        state.secrets[(name, go_string(key))] = base64.b64decode(value).decode()
                elif document.get("kind") == "Node" and kubernetes:
                    kube_node(document)
                elif document.get("kind") in ("Service", "Endpoints", "EndpointSlice"):
                    state.kube.append(document)
        elif op == "kube-delete":
            if args[0] == "secret":
                for key in [k for k in state.secrets if k[0] == args[1]]:
                    del state.secrets[key]
            elif args[0] == "node" and kubernetes:
                state.resources.pop(("Node", args[1]), None)
        elif op == "kube-delete-file":
            names = {(d.get("kind"), (d.get("metadata") or {}).get("name")) for d in load_documents(args[0])}
            state.kube = [d for d in state.kube if (d.get("kind"), (d.get("metadata") or {}).get("name")) not in names]
        elif op == "confd":
            state.node = args[0] or "kube-master"
            state.router_id = args[1] if len(args) > 1 else ""
        elif op == "expect":
            files = [path for path in args[1:] if path]
            snapshots.append(state.snapshot(args[0].strip("/"), files))
    return snapshots


def suite_snapshots(tests_dir, work):
    """Runs the suite's shell with recorders, once per datastore mode, and returns every
    comparison it makes with the state it makes it in (the first one per fixture wins)."""
    with open(os.path.join(tests_dir, "test_suite_common.sh")) as handle:
        suite = handle.read()
    confd_etc = os.path.join(work, "etc-calico-confd")
    # Paths of the suite's container, and confd started in the background, made local.
    suite = suite.replace("/etc/calico/confd", confd_etc).replace("/tests/", tests_dir.rstrip("/") + "/")
    suite = re.sub(r"(confd -confdir=[^\n]*?)[ \t]*&[ \t]*$", r"\1", suite, flags=re.M)
    by_fixture = {}
    for mode in ("etcdv3", "kubernetes"):
        run = os.path.join(work, f"suite-{mode}")
        os.makedirs(os.path.join(run, "capture"), exist_ok=True)
        shutil.rmtree(confd_etc, ignore_errors=True)
        os.makedirs(os.path.join(confd_etc, "config"), exist_ok=True)
        script = os.path.join(run, "suite.sh")
        with open(script, "w") as handle:
            handle.write(STUBS + "\n" + suite + "\n" + DRIVER)
        events = os.path.join(run, "events")
        open(events, "w").close()
        env = dict(os.environ, EVENTS=events, WORK=run, CONFD_ETC=confd_etc, DATASTORE_TYPE=mode, LOGPATH=os.path.join(run, "logs"))
        env.pop("CALICO_ROUTER_ID", None)
        subprocess.run(["bash", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        for snapshot in replay(events, tests_dir, mode):
            snapshot["mode"] = mode
            by_fixture.setdefault(snapshot["fixture"], snapshot)
    return by_fixture


# ---------------------------------------------------------------------------------------------
# 2. etcd in Calico's layout.


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Etcd:
    def __init__(self, binary, work):
        self.client_port, peer_port = free_port(), free_port()
        self.data = os.path.join(work, "etcd-data")
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.process = subprocess.Popen(
            [
                binary,
                "--data-dir", self.data,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while True:
            try:
                self.call("/v3/kv/range", {"key": self.b64("/")})
                break
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise RuntimeError("etcd did not start")
                time.sleep(0.1)

    @staticmethod
    def b64(text):
        return base64.b64encode(text.encode()).decode()

    def call(self, path, body):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def clear(self):
        self.call("/v3/kv/deleterange", {"key": self.b64("/calico"), "range_end": self.b64("/calicp")})

    def put(self, key, value):
        self.call("/v3/kv/put", {"key": self.b64(key), "value": self.b64(value)})

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def load_datastore(etcd, snapshot, tests_dir, release):
    etcd.clear()
    for resource in snapshot["resources"]:
        plural = PLURALS[resource["kind"]]
        name = resource["metadata"]["name"]
        namespace = resource["metadata"].get("namespace")
        key = f"/calico/resources/v3/projectcalico.org/{plural}/" + (f"{namespace}/{name}" if namespace else name)
        stored = copy.deepcopy(resource)
        stored["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
        stored["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
        etcd.put(key, json.dumps(stored, separators=(",", ":")))
    blocks = os.path.join(tests_dir, "mock_data", "etcd", "block")
    with open(blocks) as handle:
        for line in handle:
            if line.strip():
                key, _, value = line.strip().partition(" ")
                etcd.put(key, value)
    information = {
        "kind": "ClusterInformation",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "default"},
        "spec": {"calicoVersion": release, "clusterType": "k8s,bgp", "datastoreReady": True},
    }
    etcd.put("/calico/resources/v3/projectcalico.org/clusterinformations/default", json.dumps(information))


# ---------------------------------------------------------------------------------------------
# 3. Comparing renders.

MARKER = re.compile(r'^# include "(bird6?_(aggr|ipam)\.cfg)";')


def expected_text(fixture_dir, file_name):
    """Calico's expected render with each `include "X";` replaced by X's text."""
    with open(os.path.join(fixture_dir, file_name)) as handle:
        lines = handle.read().split("\n")
    out = []
    for line in lines:
        match = re.match(r'^include "([^"]+)";\s*$', line)
        if match and os.path.exists(os.path.join(fixture_dir, match.group(1))):
            with open(os.path.join(fixture_dir, match.group(1))) as handle:
                out.extend(handle.read().rstrip("\n").split("\n"))
        else:
            out.append(line)
    return "\n".join(out)


def actual_text(path):
    with open(path) as handle:
        return "\n".join(line for line in handle.read().split("\n") if not MARKER.match(line))


def without_blank_lines(text):
    return [line for line in text.split("\n") if line.strip()]


def strip_comments(text):
    out = []
    for line in text.split("\n"):
        in_string = False
        cut = len(line)
        for index, char in enumerate(line):
            if char == '"':
                in_string = not in_string
            elif char == "#" and not in_string:
                cut = index
                break
        out.append(line[:cut])
    return " ".join(out)


def tokens(text):
    return re.findall(r'"[^"]*"|[A-Za-z0-9_.:\'/\-*]+|\S', strip_comments(text))


def items(text):
    """BIRD's top-level items: header -> statements. Protocols compare their statements as a
    set; functions and filters in order."""
    result = {}
    stream = tokens(text)
    index = 0
    while index < len(stream):
        header = []
        while index < len(stream) and stream[index] not in ("{", ";"):
            header.append(stream[index])
            index += 1
        if index >= len(stream):
            break
        if stream[index] == ";":
            key = " ".join(header)
            result.setdefault(key, []).append([])
            index += 1
            continue
        depth, body = 0, []
        while index < len(stream):
            token = stream[index]
            body.append(token)
            index += 1
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth == 0:
                    break
        if index < len(stream) and stream[index] == ";":
            index += 1
        key = " ".join(header)
        statements = " ".join(body[1:-1])
        if header and header[0] in ("protocol", "template"):
            value = sorted(split_statements(body[1:-1]))
        else:
            value = statements
        result.setdefault(key, []).append(value)
    return result


def split_statements(body):
    statements, current, depth = [], [], 0
    for token in body:
        current.append(token)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        if depth == 0 and token == ";":
            statements.append(" ".join(current))
            current = []
    if current:
        statements.append(" ".join(current))
    return statements


def substitute_passwords(text, secrets):
    """Calico's values of the suite's Secrets, as calplan's placeholders for them."""
    by_value = {value: f"<Secret {name} key {key}>" for (name, key), value in secrets.items()}

    def replace(match):
        return f'password "{by_value.get(match.group(1), match.group(1))}";'

    return re.sub(r'password "([^"]*)";', replace, text)


def compare(expected, actual, secrets):
    if without_blank_lines(expected) == without_blank_lines(actual):
        return "exact", ""
    diff = "\n".join(difflib.unified_diff(without_blank_lines(expected), without_blank_lines(actual), "calico", "calplan", lineterm="", n=2))
    if items(expected) == items(actual):
        return "semantic", diff
    # confd renders no `password` while the Secret (or its key) does not exist; calplan, given
    # the Secrets, does the same, so this only counts renders made without them.
    present = {f"<Secret {name} key {key}>" for name, key in secrets}
    kept = [line for line in actual.split("\n") if not (re.match(r'\s*password "(<Secret [^>]*>)";', line) and re.match(r'\s*password "(<Secret [^>]*>)";', line).group(1) not in present)]
    if without_blank_lines(expected) == without_blank_lines("\n".join(kept)):
        return "secret-missing", diff
    return "differs", diff


# ---------------------------------------------------------------------------------------------
# 4. One release.


def run_calplan(calplan, args, cwd):
    return subprocess.run([calplan, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def patch_intent(path, snapshot):
    """What the datastore cannot hold: calico-node's own environment."""
    if not snapshot["router_id"]:
        return
    with open(path) as handle:
        intent = yaml.safe_load(handle)
    intent["spec"].setdefault("bgp", {})["routerID"] = snapshot["router_id"]
    with open(path, "w") as handle:
        yaml.safe_dump(intent, handle, sort_keys=False)


def export_case(export, exported, label, fixture, fixture_dir, case, node, tests_dir):
    """One matching fixture as a calplan test case (see --export)."""
    texts = []
    for name in ("bird.cfg", "bird6.cfg"):
        path = os.path.join(fixture_dir, name)
        texts.append(expected_text(fixture_dir, name) if os.path.exists(path) else "")
    key = (fixture, tuple(texts))
    if key in exported:
        return
    exported.add(key)
    minor = ".".join(label.lstrip("v").split(".")[:2])
    target = os.path.join(export, minor, fixture.replace("/", "."))
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.join(target, "expected", "nodes", node))
    with open(os.path.join(case, "intent.yaml")) as handle:
        intent = handle.read()
    with open(os.path.join(target, "intent.yaml"), "w") as handle:
        handle.write(f"# The datastore of Calico {label}'s confd test fixture `{fixture}` (node `{node}`), as `calplan import`\n")
        handle.write("# wrote it; expected/ is calplan's render, equal to the fixture's expected render but for blank lines.\n")
        handle.write(intent)
    for name in ("bird-calico.cfg", "bird6-calico.cfg"):
        shutil.copy(os.path.join(case, "out", "nodes", node, name), os.path.join(target, "expected", "nodes", node, name))
    # Felix's endpoint status files the fixture's render depends on.
    if os.path.isdir(os.path.join(case, "endpoint-status")):
        shutil.copytree(os.path.join(case, "endpoint-status"), os.path.join(target, "endpoint-status"))
    # The Secrets and Services the fixture's render depends on, with stand-in values: calplan
    # reads only the Secrets' names and keys.
    with open(os.path.join(case, "kubernetes.yaml")) as handle:
        kube = yaml.safe_load(handle)
    items = [item for item in kube["items"] if item["metadata"]["name"] != "unrelated"]
    # A fixture with passwords depends on the Secrets even when none exist: then the list
    # holds only the one of another namespace, which says so.
    if "secretKeyRef" in intent and not any(item["kind"] == "Secret" for item in items):
        items.insert(0, kube["items"][0])
    if items:
        for item in items:
            if item["kind"] == "Secret":
                item["data"] = {key: base64.b64encode(b"stand-in").decode() for key in item["data"]}
            # Only what confd reads: no ports, no endpoints' target Pods.
            item.pop("ports", None)
            (item.get("spec") or {}).pop("ports", None)
            for endpoint in item.get("endpoints") or []:
                endpoint.pop("targetRef", None)
            for subset in item.get("subsets") or []:
                subset.pop("ports", None)
                for address in subset.get("addresses") or []:
                    address.pop("targetRef", None)
        kube["items"] = items
        with open(os.path.join(target, "kubernetes.yaml"), "w") as handle:
            handle.write(f"# `kubectl get secrets,services,endpoints,endpointslices -A -o yaml` for the fixture `{fixture}`.\n")
            yaml.safe_dump(kube, handle, sort_keys=False)
    affinities = []
    with open(os.path.join(tests_dir, "mock_data", "etcd", "block")) as handle:
        for line in handle:
            if not line.strip():
                continue
            key, _, value = line.strip().partition(" ")
            parts = key.split("/")
            state = json.loads(value).get("state", "") if value.strip() else ""
            affinities.append({"node": parts[5], "cidr": parts[8].replace("-", "/"), "state": state})
    with open(os.path.join(export, "ipam.yaml"), "w") as handle:
        handle.write("# Block affinities of confd's test suite, stored under /calico/ipam/v2/host/<node>/ipv<4|6>/block/.\n")
        handle.write("# An empty state is how Calico before 3.15 stored a confirmed affinity (\"implicitly confirmed\").\n")
        yaml.safe_dump(affinities, handle, sort_keys=False)


def kubernetes_export(snapshot):
    """What `kubectl get secrets,services,endpoints,endpointslices -A -o yaml` prints for the
    suite's state: its Secrets (in calico-node's namespace, `kube-system`, values base64 as the
    API returns them; calplan keeps only names and keys), and the Services and endpoints the
    fixture applied, as the API server stores them (namespace `default`, `clusterIPs` and
    `ipFamilies` defaulted from `clusterIP`, no `status`: `kubectl apply` cannot write it). A
    Secret of another namespace is always there, as in every cluster."""
    items = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "unrelated", "namespace": "default"}, "type": "Opaque", "data": {"token": base64.b64encode(b"not-a-bgp-password").decode()}}]
    by_name = {}
    for (name, key), value in sorted(snapshot["secrets"].items()):
        by_name.setdefault(name, {})[key] = base64.b64encode(value.encode()).decode()
    for name, data in by_name.items():
        items.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "kube-system", "resourceVersion": "1"}, "type": "Opaque", "data": data})
    for document in snapshot["kube"]:
        document = copy.deepcopy(document)
        document.setdefault("apiVersion", "v1")
        document.setdefault("metadata", {}).setdefault("namespace", "default")
        document.pop("status", None)
        if document.get("kind") == "Service":
            spec = document.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            ip = str(spec.get("clusterIP") or "")
            if ip and ip != "None":
                spec.setdefault("clusterIPs", [ip])
                spec.setdefault("ipFamilies", ["IPv6" if ":" in ip else "IPv4"])
        items.append(document)
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def run_release(label, tests_dir, release, calplan, etcd_binary, work, only, out, export=None, exported=None):
    snapshots = suite_snapshots(tests_dir, work)
    compiled = os.path.join(tests_dir, "compiled_templates")
    fixtures = sorted(
        os.path.relpath(directory, compiled)
        for directory, _, files in os.walk(compiled)
        if "bird.cfg" in files or "bird6.cfg" in files
    )
    etcd = Etcd(etcd_binary, work)
    results = []
    try:
        for fixture in fixtures:
            if only and only not in fixture:
                continue
            result = {"fixture": fixture, "files": {}}
            results.append(result)
            snapshot = snapshots.get(fixture)
            if snapshot is None:
                result["error"] = "the suite never compares this fixture"
                continue
            result["node"] = snapshot["node"]
            load_datastore(etcd, snapshot, tests_dir, release)
            case = os.path.join(work, "cases", fixture.replace("/", "__"))
            shutil.rmtree(case, ignore_errors=True)
            os.makedirs(case)
            source = f"etcd://127.0.0.1:{etcd.client_port}"
            with open(os.path.join(case, "kubernetes.yaml"), "w") as handle:
                yaml.safe_dump(kubernetes_export(snapshot), handle, sort_keys=False)
            extra = ["--current", "kubernetes.yaml"]
            # Felix's endpoint status files on the node, as collected from it.
            if snapshot["endpoint_status"]:
                status_dir = os.path.join(case, "endpoint-status", snapshot["node"])
                os.makedirs(status_dir)
                for index, status in enumerate(snapshot["endpoint_status"]):
                    with open(os.path.join(status_dir, f"workload-{index + 1}"), "w") as handle:
                        json.dump(status, handle)
                extra += ["--current", "endpoint-status"]
            imported = run_calplan(calplan, ["import", "--current", source, *extra, "-o", "intent.yaml", "--name", "fixture"], case)
            if imported.returncode != 0:
                result["error"] = "import failed: " + imported.stderr.strip()[-2000:]
                continue
            patch_intent(os.path.join(case, "intent.yaml"), snapshot)
            compiled_run = run_calplan(
                calplan,
                ["compile", "intent.yaml", "--current", source, *extra, "--target", "bird-calico", "--node", snapshot["node"], "-o", "out"],
                case,
            )
            if compiled_run.returncode != 0:
                result["error"] = "compile failed: " + compiled_run.stderr.strip()[-2000:]
                continue
            fixture_dir = os.path.join(compiled, fixture)
            for calico_name, calplan_name in (("bird.cfg", "bird-calico.cfg"), ("bird6.cfg", "bird6-calico.cfg")):
                if not os.path.exists(os.path.join(fixture_dir, calico_name)):
                    continue
                artifact = os.path.join(case, "out", "nodes", snapshot["node"], calplan_name)
                if not os.path.exists(artifact):
                    result["files"][calico_name] = {"verdict": "missing"}
                    continue
                expected = substitute_passwords(expected_text(fixture_dir, calico_name), snapshot["secrets"])
                verdict, diff = compare(expected, actual_text(artifact), snapshot["secrets"])
                result["files"][calico_name] = {"verdict": verdict}
                if diff and out:
                    target = os.path.join(out, label, fixture)
                    os.makedirs(target, exist_ok=True)
                    with open(os.path.join(target, calico_name + ".diff"), "w") as handle:
                        handle.write(diff + "\n")
            if export and all(verdict_of(result, name) in ("exact", "absent") for name in ("bird.cfg", "bird6.cfg")):
                export_case(export, exported, label, fixture, fixture_dir, case, snapshot["node"], tests_dir)
    finally:
        etcd.stop()
    return results


def verdict_of(result, name):
    if "error" in result:
        return "error"
    return result["files"].get(name, {}).get("verdict", "absent")


def summarise(label, results):
    lines = [f"== {label}"]
    for name in ("bird.cfg", "bird6.cfg"):
        counted = [verdict_of(r, name) for r in results if verdict_of(r, name) != "absent"]
        exact = counted.count("exact")
        semantic = counted.count("semantic")
        lines.append(
            f"{name:10} {exact + semantic:3}/{len(counted)} match ({exact} byte-exact modulo blank lines, {semantic} semantic only); "
            f"{counted.count('differs')} differ, {counted.count('secret-missing')} differ only in passwords of Secrets the suite had not created, "
            f"{counted.count('missing')} missing, {counted.count('error')} not rendered"
        )
    for result in results:
        verdicts = " ".join(f"{name}={verdict_of(result, name)}" for name in ("bird.cfg", "bird6.cfg") if verdict_of(result, name) != "absent")
        detail = f"  ({result['error'].splitlines()[0][:160]})" if "error" in result else ""
        lines.append(f"  {result['fixture']:48} {verdicts}{detail}")
    return "\n".join(lines)


def extract(mirror, tag, work):
    """The release's confd tests from a git clone (bare or not), without a checkout."""
    target = os.path.join(work, "calico")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    archive = subprocess.run(["git", "-C", mirror, "archive", tag, "confd/tests"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)
    return os.path.join(target, "confd", "tests")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calico", required=True, help="a checkout or clone of projectcalico/calico")
    parser.add_argument("--tag", action="append", default=[], help="with a clone: the release tags to compare (repeatable)")
    parser.add_argument("--calplan", default=os.path.join(ROOT, "target", "debug", "calplan"))
    parser.add_argument("--etcd", default=shutil.which("etcd") or "etcd")
    parser.add_argument("--only", help="only fixtures whose path contains this")
    parser.add_argument("--out", help="write diffs and summary.json here")
    parser.add_argument("--export", help="write the byte-exact fixtures as calplan test cases here")
    args = parser.parse_args()
    calplan = os.path.abspath(args.calplan)
    all_ok = True
    summary = {}
    exported = set()
    with tempfile.TemporaryDirectory(prefix="calplan-fidelity-") as work:
        runs = []
        if args.tag:
            for tag in args.tag:
                runs.append((tag, lambda tag=tag: extract(args.calico, tag, os.path.join(work, tag)), tag))
        else:
            describe = subprocess.run(["git", "-C", args.calico, "describe", "--tags"], capture_output=True, text=True)
            release = describe.stdout.strip() or "unknown"
            runs.append((release, lambda: os.path.join(args.calico, "confd", "tests"), release))
        for label, tests, release in runs:
            log(f"{label}: replaying the suite")
            release_work = os.path.join(work, label, "run")
            os.makedirs(release_work, exist_ok=True)
            results = run_release(label, tests(), release, calplan, args.etcd, release_work, args.only, args.out, args.export, exported)
            summary[label] = results
            text = summarise(label, results)
            print(text, flush=True)
            all_ok &= all(verdict_of(r, n) in ("exact", "semantic", "absent") for r in results for n in ("bird.cfg", "bird6.cfg"))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "summary.json"), "w") as handle:
            json.dump(summary, handle, indent=1, sort_keys=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(main())
