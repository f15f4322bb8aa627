#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md: check, compile and plan of generated clusters of 100,
# 1,000 and 5,000 nodes, against `cp -r` of the same output and a Python + Jinja2 renderer.
#
#   bench/run.sh            # all sizes
#   bench/run.sh 1000       # one size
#
# Needs hyperfine and GNU time (apt-get install hyperfine time), python3 with jinja2 and pyyaml.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
calplan=$PWD/target/release/calplan
work=${CALPLAN_BENCH_DIR:-/tmp/calplan-bench}
mkdir -p "$work"
sizes=("${@:-100 1000 5000}")
[ $# -gt 0 ] || sizes=(100 1000 5000)

peak() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }

for n in "${sizes[@]}"; do
    intent=$work/intent-$n.yaml
    # On BIRD 2, so that node files (the rulesets NAT changes) are planned as well.
    bench/gen_intent.py "$n" --node-agent bird > "$intent"
    # The one-line change: zone b's pool stops masquerading.
    sed "s/ipipMode: CrossSubnet, natOutgoing: true/ipipMode: CrossSubnet, natOutgoing: false/" "$intent" > "$work/changed-$n.yaml"
    rm -rf "$work/out-$n" && "$calplan" compile "$intent" -o "$work/out-$n" 2>/dev/null
    size=$(du -sh "$work/out-$n" | cut -f1)
    echo "== $n nodes: output $size, $(find "$work/out-$n" -type f | wc -l) files"
    echo "check peak KB: $(peak "$calplan" check "$intent")"
    echo "compile peak KB: $(peak "$calplan" compile "$intent" -o "$work/peak-$n")"
    echo "plan peak KB: $(peak "$calplan" plan "$work/changed-$n.yaml" --current "$work/out-$n/calico")"
    # What a reviewer reads of the one-line change planned against the base intent (node files
    # included): the human plan's lines, the Markdown comment's size.
    echo "reviewed plan: $("$calplan" plan "$work/changed-$n.yaml" --current "$intent" 2>/dev/null | wc -l) lines (human)," \
         "$("$calplan" plan "$work/changed-$n.yaml" --current "$intent" --format markdown 2>/dev/null | wc -c) bytes (markdown)"
    hyperfine --style basic --warmup 1 --runs 5 \
        -n "check $n" "$calplan check $intent" \
        -n "plan one-line change, $n" "$calplan plan $work/changed-$n.yaml --current $work/out-$n/calico" 2>&1 | grep -E 'Time|±|Benchmark'
    hyperfine --style basic --runs 3 \
        --prepare "rm -rf $work/compile-$n" -n "compile $n" "$calplan compile $intent -o $work/compile-$n" \
        --prepare "rm -rf $work/copy-$n" -n "cp -r of the output, $n" "cp -r $work/out-$n $work/copy-$n" \
        --prepare "rm -rf $work/bird-$n" -n "calplan --target bird,routes, $n" "$calplan compile $intent -o $work/bird-$n --target bird,routes" \
        --prepare "rm -rf $work/py-$n" -n "python+jinja2 bird and routes, $n" "python3 bench/py_render.py $intent $work/py-$n" 2>&1 | grep -E 'Time|Benchmark'
    rm -rf "$work"/compile-$n "$work"/copy-$n "$work"/bird-$n "$work"/py-$n "$work"/peak-$n
done
