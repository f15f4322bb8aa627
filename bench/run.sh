#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md.
#
#   bench/run.sh                 # scaling: 1,000 to 50,000 nodes (issue #13's shape), table and plot
#   bench/run.sh 1000 20000      # scaling at those sizes only
#   bench/run.sh compare         # compile against cp -r and Python + Jinja2, 100, 1,000 and 5,000 nodes
#   bench/run.sh compare 5000    # the same at one size
#   bench/run.sh base 5000 20000 # the one-line change planned against the base intent itself
#
# Scaling: for each size, a cluster from `bench/gen_intent.py N` (racks of 40 nodes, two
# reflectors per 1,000 nodes, every node a client of every reflector: ≈ N × N/500 sessions) and
# its Calico export (`--export`); each command's wall time (best of 3, 1 at 50,000) and peak
# memory by GNU time, with the load average when it ran. The rows go to
# $CALPLAN_BENCH_DIR/scale.tsv, and bench/scale_report.py turns them into the Markdown table
# and the log-log plot (bench/scale.svg) BENCHMARKS.md shows.
#
# Needs GNU time (apt-get install time) and python3; `compare` also hyperfine, jinja2 and pyyaml.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
calplan=$PWD/target/release/calplan
work=${CALPLAN_BENCH_DIR:-/tmp/calplan-bench}
mkdir -p "$work"

# Seconds and peak KB of one run, as "S KB"; the command's exit status must be 0 or 1
# (check and plan exit 1 when they report an error or a change).
measure() {
    local out status
    out=$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1) && status=0 || status=$?
    case "$out" in
        [0-9]*' '[0-9]*) echo "$out" ;;
        *) echo "command failed ($status): $*" >&2; echo "$out" >&2; exit 1 ;;
    esac
}

# Best wall time of `runs` runs with the peak memory of that run, and the 1-minute load.
best_of() {
    local runs=$1 best='' line
    shift
    for _ in $(seq "$runs"); do
        line=$(measure "$@")
        if [ -z "$best" ] || awk -v a="${line% *}" -v b="${best% *}" 'BEGIN { exit !(a < b) }'; then best=$line; fi
    done
    echo "$best $(cut -d' ' -f1 /proc/loadavg)"
}

if [ "${1:-}" = compare ]; then
    shift
    sizes=("${@:-100 1000 5000}")
    [ $# -gt 0 ] || sizes=(100 1000 5000)
    peak() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }
    for n in "${sizes[@]}"; do
        intent=$work/racks-$n.yaml
        # On BIRD 2, so that node files (the rulesets NAT changes) are planned as well.
        bench/gen_intent.py "$n" --shape rack-groups --node-agent bird > "$intent"
        rm -rf "$work/out-$n" && "$calplan" compile "$intent" -o "$work/out-$n" 2>/dev/null
        echo "== $n nodes: output $(du -sh "$work/out-$n" | cut -f1), $(find "$work/out-$n" -type f | wc -l) files"
        echo "compile peak KB: $(peak "$calplan" compile "$intent" -o "$work/peak-$n")"
        # What a reviewer reads of the one-line change planned against the base intent (node files
        # included): the human plan's lines, the Markdown comment's size, and the plan's cost.
        sed "s/ipipMode: CrossSubnet, natOutgoing: true/ipipMode: CrossSubnet, natOutgoing: false/" "$intent" > "$work/racks-changed-$n.yaml"
        echo "reviewed plan: $("$calplan" plan "$work/racks-changed-$n.yaml" --current "$intent" 2>/dev/null | wc -l) lines (human)," \
             "$("$calplan" plan "$work/racks-changed-$n.yaml" --current "$intent" --format markdown 2>/dev/null | wc -c) bytes (markdown)"
        echo "plan with node files (seconds, peak KB): $(measure "$calplan" plan "$work/racks-changed-$n.yaml" --current "$intent")"
        hyperfine --style basic --runs 3 \
            --prepare "rm -rf $work/compile-$n" -n "compile $n" "$calplan compile $intent -o $work/compile-$n" \
            --prepare "rm -rf $work/copy-$n" -n "cp -r of the output, $n" "cp -r $work/out-$n $work/copy-$n" \
            --prepare "rm -rf $work/bird-$n" -n "calplan --target bird,routes, $n" "$calplan compile $intent -o $work/bird-$n --target bird,routes" \
            --prepare "rm -rf $work/py-$n" -n "python+jinja2 bird and routes, $n" "python3 bench/py_render.py $intent $work/py-$n" 2>&1 | grep -E 'Time|Benchmark'
        rm -rf "$work"/compile-$n "$work"/copy-$n "$work"/bird-$n "$work"/py-$n "$work"/peak-$n "$work/out-$n"
    done
    exit 0
fi

if [ "${1:-}" = base ]; then
    # The base-branch diff: the changed intent planned against the base intent as current state
    # (`--current base.yaml`), so that every node's files are compiled and compared, on
    # calico-node (the plan is the IPPool; confd's render and the routes are compared) and on
    # BIRD 2 (every node's NAT rules change too). One run each: wall time, peak memory, load.
    # On BIRD 2 the plan itself carries every node's two rulesets before and after, and each
    # lists every rack's hosts (nodes² in all: 1.4 GB at 5,000 nodes), so it runs to 5,000.
    shift
    sizes=("$@")
    [ $# -gt 0 ] || sizes=(1000 5000 20000)
    for n in "${sizes[@]}"; do
        agents=(calico-node)
        [ "$n" -gt 5000 ] || agents+=(bird)
        for agent in "${agents[@]}"; do
            bench/gen_intent.py "$n" --node-agent "$agent" > "$work/base-$agent-$n.yaml"
            sed "s/ipipMode: CrossSubnet, natOutgoing: true/ipipMode: CrossSubnet, natOutgoing: false/" \
                "$work/base-$agent-$n.yaml" > "$work/head-$agent-$n.yaml"
            echo "$n $agent plan against the base intent (seconds, peak KB, load):" \
                "$(best_of 1 "$calplan" plan "$work/head-$agent-$n.yaml" --current "$work/base-$agent-$n.yaml")"
        done
    done
    exit 0
fi

sizes=("$@")
[ $# -gt 0 ] || sizes=(1000 2000 5000 10000 20000 50000)
results=$work/scale.tsv
printf 'nodes\tsessions\tcommand\tseconds\tpeak_kb\tload\n' > "$results"
for n in "${sizes[@]}"; do
    intent=$work/intent-$n.yaml
    export=$work/export-$n.yaml
    bench/gen_intent.py "$n" > "$intent"
    bench/gen_intent.py "$n" --export > "$export"
    # The one-line change: zone b's pool stops masquerading.
    sed "s/ipipMode: CrossSubnet, natOutgoing: true/ipipMode: CrossSubnet, natOutgoing: false/" "$intent" > "$work/changed-$n.yaml"
    # Sessions as `calplan status` lists them: a row per node's end, two per session between
    # nodes (one for a session with a router).
    ends=$("$calplan" status "$intent" | grep -c '^| [0-9a-f]' || true)
    sessions=$((ends / 2))
    runs=3
    [ "$n" -lt 50000 ] || runs=1
    row() { local name=$1; shift; echo "$n $sessions $name $(best_of "$runs" "$@")" | tr ' ' '\t' | tee -a "$results"; }
    row check "$calplan" check "$intent"
    row plan "$calplan" plan "$work/changed-$n.yaml" --current "$export"
    row status "$calplan" status "$intent"
    row import "$calplan" import --current "$export" --name "bench-$n" -o "$work/imported-$n.yaml"
    rm -rf "$work/compile-$n"
    row compile "$calplan" compile "$intent" --target calico,bird,bird-calico -o "$work/compile-$n"
    rm -rf "$work/compile-$n" "$work/imported-$n.yaml"
done
python3 bench/scale_report.py "$results" bench/scale.svg
