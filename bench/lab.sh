#!/usr/bin/env bash
# `calplan lab up` + `verify` + `down` on a generated N-node intent, as root: wall time and peak
# memory of calplan itself, and the memory of what the lab runs (PSS of every process in the
# lab's namespaces, and in calico-node mode of its etcd and calico-node emulation, so shared
# pages are counted once). In calico-node mode it also times the confd emulation re-rendering
# every node after one datastore change: the node-to-node mesh switched on in the lab's etcd
# (BGPConfiguration `default`), from the write to every node's BIRD reconfigured; and it runs
# `calplan verify` against the lab through the netns transport, serially and 16 nodes at once.
#
#     bench/lab.sh 50                      # bench/gen_intent.py 50, as generated, calico-node mode
#     bench/lab.sh 100 vxlan               # the same cluster with its pools on VXLAN CrossSubnet
#     NODE_AGENT=bird bench/lab.sh 100     # the nodes on calplan's BIRD 2
#
# CALPLAN (default target/release/calplan) is the binary measured.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:?usage: bench/lab.sh NODES [vxlan]}
variant=${2:-}
agent=${NODE_AGENT:-calico-node}
calplan=${CALPLAN:-target/release/calplan}
work=$(mktemp -d /tmp/calplan-lab-bench.XXXXXX)
intent=$work/bench-$count.yaml
python3 bench/gen_intent.py "$count" --shape rack-groups > "$intent"
if [ "$variant" = vxlan ]; then
	# The racks are separate subnets and the fabric knows no pod route: without encapsulation
	# across racks, pods in different racks cannot reach each other.
	sed -i 's/natOutgoing: true, nodeSelector: \("\?all()"\?\)}/natOutgoing: true, nodeSelector: \1, vxlanMode: CrossSubnet}/; s/ipipMode: CrossSubnet/vxlanMode: CrossSubnet/' "$intent"
	# The default pool must carry VXLAN now, or every cross-rack path is a gap.
	for file in "$intent"; do grep -q 'name: default-ipv4.*vxlanMode: CrossSubnet' "$file" || { echo "no VXLAN on the default pool of $file" >&2; exit 1; }; done
fi
lab=$work/lab
trap '"$calplan" lab down "$intent" --dir "$lab" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); nodes run by $agent"
/usr/bin/time -f "lab up:     %e s, calplan peak RSS %M KB" "$calplan" lab up "$intent" --dir "$lab" --node-agent "$agent" 2>&1 |
	grep -E '^(lab up:|network|datastore|daemons|calico-node emulation|Felix|lab .* is up)|barrier held'
status=0
/usr/bin/time -f "lab verify: %e s, calplan peak RSS %M KB" "$calplan" lab verify "$intent" --dir "$lab" --timeout 60 > "$work/verify.txt" 2> "$work/verify.err" || status=$?
tail -1 "$work/verify.err"
grep -E '\[[0-9.]+s\]$|^Result' "$work/verify.txt"
[ "$status" = 0 ] || grep -m 3 'GAP' "$work/verify.txt" | cut -c1-200
prefix=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['prefix'])" "$lab/lab.json")
pids=$(for namespace in $(ip netns list | awk '{print $1}' | grep "^$prefix-"); do ip netns pids "$namespace"; done)
pids="$pids $(cat "$lab/etcd/etcd.pid" "$lab/calico-node.pid" 2>/dev/null || true)"
echo "namespaces: $(ip netns list | grep -c "^$prefix-"), processes: $(echo "$pids" | wc -w)"
for pid in $pids; do echo "$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup") $(cat "/proc/$pid/comm")"; done |
	awk '{kb[$2] += $1; n[$2]++; total += $1} END {for (p in kb) printf "  %-12s %4d × %6.1f MB\n", p, n[p], kb[p] / 1024; printf "lab processes, PSS: %.0f MB\n", total / 1024}'
if [ "$agent" = calico-node ]; then
	port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['etcd']['clientPort'])" "$lab/lab.json")
	# `calplan verify` as against a cluster (each node's render, sessions and routes through the
	# netns transport with the lab's inventory), one node at a time and then 16 at once.
	for parallelism in 1 16; do
		started=$(date +%s.%N)
		differences=$("$calplan" verify "$intent" --current "etcd://127.0.0.1:$port" --transport netns --inventory "$lab/inventory.json" \
			--parallelism "$parallelism" --format json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['differences'])" || echo "?")
		echo "calplan verify --parallelism $parallelism: $(python3 -c "print(f'{$(date +%s.%N) - $started:.2f}')") s, $differences differences"
	done
	key=/calico/resources/v3/projectcalico.org/bgpconfigurations/default
	value=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$port" get "$key" --print-value-only)
	changed=$(python3 -c "import json,sys; v=json.loads(sys.argv[1]); v['spec']['nodeToNodeMeshEnabled']=True; print(json.dumps(v))" "$value")
	before=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['revision'])" "$lab/calico-node.json")
	start=$(date +%s.%N)
	ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$port" put "$key" "$changed" >/dev/null
	for _ in $(seq 600); do
		now=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['revision'], s['reconfigured'], s['seconds'])" "$lab/calico-node.json")
		[ "${now%% *}" -gt "$before" ] && break
		sleep 0.05
	done
	end=$(date +%s.%N)
	set -- $now
	echo "mesh on in etcd: confd emulation re-rendered and reconfigured $2 nodes at revision $1 in $(printf %.2f "$3") s ($(python3 -c "print(f'{$end - $start:.2f}')") s from the write)"
fi
/usr/bin/time -f "lab down:   %e s" "$calplan" lab down "$intent" --dir "$lab" 2>&1 | tail -1
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
