#!/usr/bin/env bash
# Reproduces the node-rules figures in BENCHMARKS.md: an N-node cluster described by a handful
# of rules (bench/gen_rules.py), its nodes from an inventory (`--nodes`) or from the cluster's
# own Calico `Node`s (`--current`), and `import` of that cluster proposing rules.
#
#   bench/rules.sh          # 5,000 nodes
#   bench/rules.sh 1000
#
# Needs GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin calplan
calplan=$PWD/target/release/calplan
work=${CALPLAN_BENCH_DIR:-/tmp/calplan-bench}/rules
mkdir -p "$work"
n=${1:-5000}

bench/gen_rules.py "$n" "$work/intent.yaml" "$work/nodes.yaml"
# The cluster as the rules made it: the Calico resources of a compile, the export to import.
rm -rf "$work/out" && "$calplan" compile "$work/intent.yaml" --nodes "$work/nodes.yaml" -o "$work/out" --target calico 2>/dev/null
# Fifty nodes joined since: in the inventory, not yet in the cluster's Calico `Node`s.
cp "$work/nodes.yaml" "$work/joined.yaml"
for i in $(seq 0 49); do
    echo "- {name: joined-$i, ipv4Address: 10.250.0.$((i + 10))/24, labels: {rack: r0, zone: a}}" >> "$work/joined.yaml"
done
echo "== $n nodes, $(grep -c 'name:' "$work/intent.yaml") named things in a $(wc -l < "$work/intent.yaml")-line intent"
echo "plan of 50 joining nodes: $("$calplan" plan "$work/intent.yaml" --current "$work/out/calico" --nodes "$work/joined.yaml" 2>/dev/null | wc -l) lines"
"$calplan" import --current "$work/out/calico" -o "$work/imported.yaml" 2>/dev/null
echo "imported intent: $(wc -l < "$work/imported.yaml") lines, $(grep -c '^  - name: ' "$work/imported.yaml") rules and nodes"
"$calplan" plan "$work/imported.yaml" --current "$work/out/calico" 2>/dev/null | head -1
# Mean ± σ of five runs after a warm-up, and the peak resident memory (GNU time), without
# hyperfine where it is not installed.
measure() {
    local name=$1; shift
    "$@" >/dev/null 2>&1 || true
    for _ in 1 2 3 4 5; do /usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1; done |
        python3 -c "import sys, statistics as s; r=[l.split() for l in sys.stdin]; t=[float(x[0]) for x in r]; print(f'$name: {s.mean(t)*1000:.0f} ms ± {s.stdev(t)*1000:.0f}, peak {max(int(x[1]) for x in r)//1024} MB')"
}
measure "check --nodes, $n" "$calplan" check "$work/intent.yaml" --nodes "$work/nodes.yaml"
measure "plan --current, $n (empty)" "$calplan" plan "$work/intent.yaml" --current "$work/out/calico"
measure "plan --current --nodes, 50 joining" "$calplan" plan "$work/intent.yaml" --current "$work/out/calico" --nodes "$work/joined.yaml"
measure "import, $n" "$calplan" import --current "$work/out/calico" -o "$work/imported.yaml"
measure "plan of the import, $n" "$calplan" plan "$work/imported.yaml" --current "$work/out/calico"
uptime
