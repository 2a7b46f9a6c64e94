#!/usr/bin/env python3
"""bench/patch-report.py RESULTS MACHINE WRITE: the report of bench/patch.sh.

RESULTS is its tab-separated file (pair, tool, patch bytes, "diff-seconds
diff-KiB" or "-", "apply-seconds apply-KiB"). Prints the table and the floors
of issue 15; with WRITE=1 also puts the table into README.md between its
bench/patch.sh markers and draws bench/patch.svg (no network, no libraries).
Exits 1 when a floor fails.
"""
import sys

PAIRS = [("1-2", "world-1 -> 2"), ("2-3", "world-2 -> 3"), ("1-3", "world-1 -> 3 direct"), ("1-2-3", "world-1 -> 2 -> 3 chain")]
TOOLS = ["bsdiff", "xdelta3", "zstd", "binarydist", "binarydist, .tar.gz base"]
LABEL = {"bsdiff": "bsdiff / bspatch", "xdelta3": "xdelta3 -9", "zstd": "zstd -19 --long --patch-from",
         "binarydist": "binarydist", "binarydist, .tar.gz base": "binarydist from the .tar.gz base"}
COLOUR = {"bsdiff": "#8c8c8c", "xdelta3": "#e0a030", "zstd": "#5a8fd0", "binarydist": "#2f9e44",
          "binarydist, .tar.gz base": "#8fd19e"}
MEMORY_SETTING_KIB = 512 * 1024
BEGIN, END = "<!-- bench/patch.sh table: begin -->", "<!-- bench/patch.sh table: end -->"


def read(path):
    rows = {}
    for line in open(path):
        pair, tool, size, diff, apply = line.rstrip("\n").split("\t")
        fig = lambda s: tuple(float(x) for x in s.split()) if s != "-" else None
        rows[(pair, tool)] = {"size": int(size) if size != "-" else None, "diff": fig(diff), "apply": fig(apply)}
    return rows


def ratio(a, b):
    return None if a is None or not b else a / b


def table(rows, machine):
    out = [f"Measured by `bench/patch.sh` ({machine}). Patch bytes; seconds and peak RSS (MiB) by "
           "`/usr/bin/time -f '%e %M'`; apply from the uncompressed old tar to an uncompressed new tar, "
           "and for binarydist also from its gzipped base; x = against bsdiff / bspatch on the same pair.", "",
           "| pair | tool | patch bytes | x bsdiff | diff s | diff MiB | apply s | apply MiB | apply x bspatch |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for pair, title in PAIRS:
        base = rows.get((pair, "bsdiff"))
        for tool in TOOLS:
            r = rows.get((pair, tool))
            if not r:
                continue
            size = f"{r['size']:,}" if r["size"] is not None else ""
            xs = ratio(r["size"], base and base["size"])
            d, a = r["diff"], r["apply"]
            xa = ratio(a[0], base and base["apply"] and base["apply"][0])
            out.append(f"| {title} | {LABEL[tool]} | {size} | {'' if xs is None else f'{xs:.3f}'} | "
                       f"{'' if d is None else f'{d[0]:.1f}'} | {'' if d is None else f'{d[1] / 1024:.0f}'} | "
                       f"{a[0]:.2f} | {a[1] / 1024:.0f} | {'' if xa is None else f'{xa:.2f}'} |")
    return out


def floors(rows):
    """The floors and stretch goals of issue 15 on 1 -> 2: (lines, all floors held)."""
    b, d = rows.get(("1-2", "bsdiff")), rows.get(("1-2", "binarydist"))
    if not b or not d:
        return ["floors: not judged (needs bsdiff and binarydist on 1 -> 2)"], True
    checks = [
        ("patch size", d["size"] / b["size"], 0.88, 0.80),
        ("diff time", d["diff"][0] / b["diff"][0], 0.15, 0.05),
        ("apply time (plain tar)", d["apply"][0] / b["apply"][0], 0.75, 0.50),
    ]
    lines, ok = [], True
    for what, x, floor, stretch in checks:
        held = x <= floor
        ok &= held
        lines.append(f"- {what}: {x:.3f}x {'bspatch' if 'apply' in what else 'bsdiff'}'s; floor {floor}x {'held' if held else 'FAILED'}; "
                     f"stretch {stretch}x {'met' if x <= stretch else 'not met'}")
    rss = d["diff"][1]
    held = rss <= MEMORY_SETTING_KIB
    ok &= held
    lines.append(f"- diff peak RSS: {rss / 1024:.0f} MiB against the 512 MiB setting: {'held' if held else 'FAILED'}")
    return lines, ok


def svg(rows, machine):
    """Horizontal bars, one panel a measure, each bar against bsdiff on its pair."""
    measures = [("patch size", "bsdiff", lambda r: r["size"], lambda v: f"{v / 1e6:.2f} MB" if v >= 1e6 else f"{v / 1e3:.0f} KB"),
                ("diff time", "bsdiff", lambda r: r["diff"] and r["diff"][0], lambda v: f"{v:.1f} s"),
                ("apply time, from the plain tar unless said", "bspatch", lambda r: r["apply"][0], lambda v: f"{v:.2f} s")]
    width, left, scale_w, bar_h, cap = 980, 330, 420, 13, 3.0
    parts, y = [], 40
    for title, anchor, get, fmt in measures:
        parts.append(f'<text x="10" y="{y}" font-size="15" font-weight="bold">{title} (bar: x {anchor} on the same pair, cut at {cap:.0f}x)</text>')
        y += 12
        for pair, ptitle in PAIRS:
            base = rows.get((pair, "bsdiff"))
            bars = [(t, rows[(pair, t)]) for t in TOOLS if (pair, t) in rows and get(rows[(pair, t)]) is not None]
            if not bars:
                continue
            y += 16
            parts.append(f'<text x="10" y="{y}" font-size="12" font-style="italic">{ptitle}</text>')
            for tool, r in bars:
                y += bar_h + 3
                v = get(r)
                x = ratio(v, base and get(base))
                length = scale_w * min(x if x is not None else 0, cap) / cap
                parts.append(f'<text x="{left - 6}" y="{y}" font-size="11" text-anchor="end">{LABEL[tool]}</text>')
                parts.append(f'<rect x="{left}" y="{y - bar_h + 2}" width="{length:.1f}" height="{bar_h}" fill="{COLOUR[tool]}"/>')
                note = fmt(v) + ("" if x is None else f"  ({x:.2f}x)")
                parts.append(f'<text x="{left + length + 6:.1f}" y="{y}" font-size="11">{note}</text>')
        for k in (1, 2, 3):
            gx = left + scale_w * k / cap
            parts.append(f'<line x1="{gx:.1f}" y1="{y + 6}" x2="{gx:.1f}" y2="{y + 12}" stroke="#444"/>')
            parts.append(f'<text x="{gx:.1f}" y="{y + 24}" font-size="10" text-anchor="middle">{k}x</text>')
        y += 44
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" font-family="sans-serif">'
            f'<rect width="100%" height="100%" fill="white"/>'
            f'<text x="10" y="20" font-size="13">bench/patch.sh: {machine}</text>')
    return head + "".join(parts) + "</svg>\n"


def main():
    rows = read(sys.argv[1])
    machine, write = sys.argv[2], sys.argv[3] == "1"
    lines = table(rows, machine)
    fl, ok = floors(rows)
    report = lines + ["", "Floors and stretch goals on world-1 -> world-2 (issue 15):", ""] + fl
    print("\n".join(report))
    if write:
        readme = open("README.md").read()
        if BEGIN in readme and END in readme:
            head, rest = readme.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            block = "\n".join(report + ["", "![patch size, diff and apply time against bsdiff](bench/patch.svg)"])
            open("README.md", "w").write(head + BEGIN + "\n" + block + "\n" + END + tail)
        else:
            print("bench/patch-report.py: README.md has no bench/patch.sh markers; table not written", file=sys.stderr)
        open("bench/patch.svg", "w").write(svg(rows, machine))
    sys.exit(0 if ok else 1)


main()
