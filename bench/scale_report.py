#!/usr/bin/env python3
"""Turns bench/run.sh's scale.tsv into BENCHMARKS.md's table (printed) and a log-log plot of
time and peak memory against nodes + sessions (an SVG, no plotting library needed).

    bench/scale_report.py /tmp/calplan-bench/scale.tsv bench/scale.svg
"""

import csv
import math
import sys
from collections import defaultdict

COMMANDS = ["check", "plan", "status", "import", "compile"]
COLOURS = {"check": "#1f77b4", "plan": "#d62728", "status": "#2ca02c", "import": "#9467bd", "compile": "#ff7f0e"}


def main() -> None:
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    by_size: dict[int, dict] = defaultdict(dict)
    sessions: dict[int, int] = {}
    for row in rows:
        n = int(row["nodes"])
        sessions[n] = int(row["sessions"])
        by_size[n][row["command"]] = (float(row["seconds"]), int(row["peak_kb"]) / 1024, row["load"])
    print(table(by_size, sessions))
    print()
    print(slopes(by_size, sessions))
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as out:
            out.write(plot(by_size, sessions))


def table(by_size, sessions) -> str:
    head = "| nodes | sessions | " + " | ".join(f"`{c}`" for c in COMMANDS) + " | load |"
    lines = [head, "|" + "---:|" * (len(COMMANDS) + 3)]
    for n in sorted(by_size):
        cells = []
        loads = []
        for command in COMMANDS:
            if command in by_size[n]:
                seconds, mb, load = by_size[n][command]
                cells.append(f"{seconds:.2f} s, {mb:,.0f} MB")
                loads.append(float(load))
            else:
                cells.append("—")
        load = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "—"
        lines.append(f"| {n:,} | {sessions[n]:,} | " + " | ".join(cells) + f" | {load} |")
    return "\n".join(lines)


def slopes(by_size, sessions) -> str:
    """The slope of log(time) and log(memory) against log(nodes + sessions), by least squares
    over the sizes measured: 1 is linear growth."""
    sizes = sorted(by_size)
    out = []
    for command in COMMANDS:
        points = [(n + sessions[n], by_size[n][command]) for n in sizes if command in by_size[n]]
        if len(points) < 2:
            continue
        x = [math.log(size) for size, _ in points]
        fit = lambda y: least_squares(x, y)
        time_slope = fit([math.log(max(value[0], 0.005)) for _, value in points])
        memory_slope = fit([math.log(value[1]) for _, value in points])
        out.append(f"{command}: time slope {time_slope:.2f}, memory slope {memory_slope:.2f}")
    return "\n".join(out)


def least_squares(x, y) -> float:
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mean_x) * (b - mean_y) for a, b in zip(x, y)) / sum((a - mean_x) ** 2 for a in x)


def plot(by_size, sessions) -> str:
    width, height, margin = 900, 380, 60
    panel = (width - 3 * margin) / 2
    sizes = sorted(by_size)
    xs = [n + sessions[n] for n in sizes]
    x_low, x_high = decade_below(min(xs)), decade_above(max(xs))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for index, (title, pick, unit) in enumerate([("wall time", 0, "s"), ("peak memory", 1, "MB")]):
        values = [by_size[n][c][pick] for n in sizes for c in COMMANDS if c in by_size[n]]
        y_low, y_high = decade_below(max(min(values), 0.005)), decade_above(max(values))
        left = margin + index * (panel + margin)
        top, bottom = 30, height - margin

        def px(x):
            return left + panel * (math.log10(x) - math.log10(x_low)) / (math.log10(x_high) - math.log10(x_low))

        def py(y):
            y = max(y, y_low)
            return bottom - (bottom - top) * (math.log10(y) - math.log10(y_low)) / (math.log10(y_high) - math.log10(y_low))

        svg.append(f'<text x="{left + panel / 2}" y="18" text-anchor="middle" font-weight="bold">{title} ({unit}) against nodes + sessions</text>')
        svg.append(f'<rect x="{left}" y="{top}" width="{panel}" height="{bottom - top}" fill="none" stroke="#444"/>')
        svg.append(f'<clipPath id="panel{index}"><rect x="{left}" y="{top}" width="{panel}" height="{bottom - top}"/></clipPath>')
        for decade in decades(x_low, x_high):
            svg.append(f'<line x1="{px(decade)}" y1="{top}" x2="{px(decade)}" y2="{bottom}" stroke="#ddd"/>')
            svg.append(f'<text x="{px(decade)}" y="{bottom + 16}" text-anchor="middle">{label(decade)}</text>')
        for decade in decades(y_low, y_high):
            svg.append(f'<line x1="{left}" y1="{py(decade)}" x2="{left + panel}" y2="{py(decade)}" stroke="#ddd"/>')
            svg.append(f'<text x="{left - 4}" y="{py(decade) + 4}" text-anchor="end">{label(decade)}</text>')
        # A line of slope 1 through the first check point: linear growth for comparison.
        if "check" in by_size[sizes[0]]:
            x0, y0 = xs[0], by_size[sizes[0]]["check"][pick]
            x1 = xs[-1]
            svg.append(f'<line x1="{px(x0)}" y1="{py(y0)}" x2="{px(x1)}" y2="{py(y0 * x1 / x0)}" stroke="#999" stroke-dasharray="4 4" clip-path="url(#panel{index})"/>')
        for command in COMMANDS:
            points = [(x, by_size[n][command][pick]) for n, x in zip(sizes, xs) if command in by_size[n]]
            if not points:
                continue
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[command]}" stroke-width="2"/>')
            for x, y in points:
                svg.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{COLOURS[command]}"/>')
        if index == 0:
            for row, command in enumerate(COMMANDS + ["linear"]):
                colour = COLOURS.get(command, "#999")
                y = top + 14 + row * 15
                svg.append(f'<line x1="{left + 8}" y1="{y - 4}" x2="{left + 26}" y2="{y - 4}" stroke="{colour}" stroke-width="2"/>')
                svg.append(f'<text x="{left + 30}" y="{y}">{command}</text>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def decade_below(value: float) -> float:
    return 10 ** math.floor(math.log10(value))


def decade_above(value: float) -> float:
    return 10 ** math.ceil(math.log10(value))


def decades(low: float, high: float):
    value = low
    while value <= high * 1.0001:
        yield value
        value *= 10


def label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


if __name__ == "__main__":
    main()
