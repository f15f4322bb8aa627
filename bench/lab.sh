#!/usr/bin/env bash
# `calplan lab up` + `verify` + `down` on a generated N-node intent, as root: wall time and peak
# memory of calplan itself, and the memory of what the lab runs (PSS of every process in the
# lab's namespaces, so shared pages are counted once).
#
#     bench/lab.sh 50                 # bench/gen_intent.py 50, as generated
#     bench/lab.sh 100 vxlan          # the same cluster with its pools on VXLAN CrossSubnet
#
# CALPLAN (default target/release/calplan) is the binary measured.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:?usage: bench/lab.sh NODES [vxlan]}
variant=${2:-}
calplan=${CALPLAN:-target/release/calplan}
work=$(mktemp -d /tmp/calplan-lab-bench.XXXXXX)
intent=$work/bench-$count.yaml
python3 bench/gen_intent.py "$count" > "$intent"
if [ "$variant" = vxlan ]; then
	# The racks are separate subnets and the fabric knows no pod route: without encapsulation
	# across racks, pods in different racks cannot reach each other.
	sed -i 's/natOutgoing: true, nodeSelector: all()}/natOutgoing: true, nodeSelector: all(), vxlanMode: CrossSubnet}/; s/ipipMode: CrossSubnet/vxlanMode: CrossSubnet/' "$intent"
fi
lab=$work/lab
trap '"$calplan" lab down "$intent" --dir "$lab" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

/usr/bin/time -f "lab up:     %e s, calplan peak RSS %M KB" "$calplan" lab up "$intent" --dir "$lab" 2>&1 | grep -E '^(lab up:|network|daemons|Felix|lab .* is up)|barrier held'
status=0
/usr/bin/time -f "lab verify: %e s, calplan peak RSS %M KB" "$calplan" lab verify "$intent" --dir "$lab" --timeout 60 > "$work/verify.txt" 2> "$work/verify.err" || status=$?
tail -1 "$work/verify.err"
grep -E '\[[0-9.]+s\]$|^Result' "$work/verify.txt"
[ "$status" = 0 ] || grep -m 3 'GAP' "$work/verify.txt" | cut -c1-200
prefix=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['prefix'])" "$lab/lab.json")
pids=$(for namespace in $(ip netns list | awk '{print $1}' | grep "^$prefix-"); do ip netns pids "$namespace"; done)
echo "namespaces: $(ip netns list | grep -c "^$prefix-"), processes: $(echo "$pids" | wc -w)"
for pid in $pids; do echo "$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup") $(cat "/proc/$pid/comm")"; done |
	awk '{kb[$2] += $1; n[$2]++; total += $1} END {for (p in kb) printf "  %-8s %4d × %6.1f MB\n", p, n[p], kb[p] / 1024; printf "lab processes, PSS: %.0f MB\n", total / 1024}'
/usr/bin/time -f "lab down:   %e s" "$calplan" lab down "$intent" --dir "$lab" 2>&1 | tail -1
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
