#!/usr/bin/env bash
# apply's fan-out, measured on the lab: a plan that changes every node's sessions on a generated
# N-node cluster (bench/gen_intent.py, its nodes on BIRD 2), carried out by `calplan lab apply`
# (apply's executor over the netns transport) with each `--parallelism` given, each on a fresh
# lab. As root.
#
#     bench/apply.sh 30 mesh              # the mesh → route-reflector plan; --parallelism 1, then 16
#     bench/apply.sh 100 reflectors 1 4 16  # the reflectors move to two other nodes
#
# FROM is the cluster before the plan: `mesh` (the full mesh, planned to the generated
# reflector design) or `reflectors` (the reflector design with its reflectors on other nodes).
# A full mesh needs n × (n - 1) neighbour entries, and the kernel keeps one neighbour table for
# all namespaces (net.ipv4.neigh.default.gc_thresh3, 1024 by default): past about 30 nodes the
# table overflows ("neighbor table overflow!") and the mesh never converges in a lab.
#
# Per run: the plan's stages, every fan-out's line from the executor ("N changes on M hosts in
# Xs, P at a time (slowest host: …, Ys)"), every barrier's wait, and the sums: time in node-side
# changes, the slowest host's share of it, time in barriers, and the whole apply.
# CALPLAN (default target/release/calplan) is the binary measured.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:?usage: bench/apply.sh NODES mesh|reflectors [PARALLELISM...]}
from=${2:?usage: bench/apply.sh NODES mesh|reflectors [PARALLELISM...]}
shift 2
levels=("$@")
[ $# -gt 0 ] || levels=(1 16)
calplan=${CALPLAN:-target/release/calplan}
work=$(mktemp -d /tmp/calplan-apply-bench.XXXXXX)
mesh=$work/mesh-$count.yaml
reflectors=$work/rr-$count.yaml
case "$from" in
	mesh) python3 bench/gen_intent.py "$count" --shape rack-groups --mesh --node-agent bird > "$mesh" ;;
	reflectors) python3 bench/gen_intent.py "$count" --shape rack-groups --reflectors-at 2 --node-agent bird > "$mesh" ;;
	*) echo "FROM is mesh or reflectors" >&2; exit 2 ;;
esac
python3 bench/gen_intent.py "$count" --shape rack-groups --node-agent bird > "$reflectors"
# Pools on VXLAN CrossSubnet, as `bench/lab.sh N vxlan`: the racks are separate subnets and the
# lab's fabric knows no pod route, so only encapsulated pod traffic crosses racks (and `lab
# apply` probes every path before it starts).
sed -i 's/natOutgoing: true, nodeSelector: \("\?all()"\?\)}/natOutgoing: true, nodeSelector: \1, vxlanMode: CrossSubnet}/; s/ipipMode: CrossSubnet/vxlanMode: CrossSubnet/' "$mesh" "$reflectors"
# The default pool must carry VXLAN now, or every cross-rack path is a gap.
for file in "$mesh" "$reflectors"; do grep -q 'name: default-ipv4.*vxlanMode: CrossSubnet' "$file" || { echo "no VXLAN on the default pool of $file" >&2; exit 1; }; done
lab=$work/lab
trap '"$calplan" lab down "$mesh" --dir "$lab" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

for parallelism in "${levels[@]}"; do
	echo "== $count nodes, --parallelism $parallelism (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	"$calplan" lab up "$mesh" --dir "$lab" 2>&1 | grep -E '^lab .* is up' || true
	# The cluster converges first: `lab apply` probes every path before it starts.
	"$calplan" lab verify "$mesh" --dir "$lab" --timeout 300 2>/dev/null | grep -E '^Result' || true
	"$calplan" plan "$reflectors" --current "$lab/state/applied" -o "$work/plan" 2>/dev/null >/dev/null
	started=$(date +%s.%N)
	"$calplan" lab apply "$work/plan" --dir "$lab" --parallelism "$parallelism" --allow-loss --barrier-timeout 300 \
		> "$work/apply.out" 2> "$work/apply.err" || { tail -20 "$work/apply.err"; exit 1; }
	ended=$(date +%s.%N)
	grep -E '^stage [0-9]+/|changes on .* hosts in|barrier held after' "$work/apply.err"
	python3 - "$work/apply.err" "$lab/apply-report.json" "$started" "$ended" <<'PY'
import json, re, sys
log, report = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
fanouts = re.findall(r"changes on \d+ hosts in ([0-9.]+)s, \d+ at a time \(slowest host: `[^`]+`, ([0-9.]+)s\)", log)
changes = sum(float(total) for total, _ in fanouts)
slowest = sum(float(host) for _, host in fanouts)
barriers = sum(float(seconds) for seconds in re.findall(r"barrier held after ([0-9.]+)s", log))
stages = sum(i["seconds"] for i in report["intervals"] if i["label"] not in ("before the plan", "after the plan"))
print(f"node-side changes: {changes:.1f} s (the slowest host of each fan-out: {slowest:.1f} s); barriers: {barriers:.1f} s; "
      f"stages: {stages:.1f} s; lab apply in all: {float(sys.argv[4]) - float(sys.argv[3]):.1f} s; lost: {sum(i['lost'] for i in report['intervals'])}")
PY
	"$calplan" lab down "$mesh" --dir "$lab" >/dev/null 2>&1
done
