#!/usr/bin/env python3
"""Draws recall@k against queries a second (log scale), one line per engine and setting sweep,
as ann-benchmarks does, from JSON reports in the peers.py schema (`tidepool bench --json`,
`peers.py --json`): single queries, one per call on one thread.

    python3 scripts/plot_bench.py --out docs/bench/pypi-minilm-100k.svg bench-results/*.json

Engines whose sweep is a single exact setting (flat search) are drawn as one point. The title
gives the dataset, the date of the run and the CPU; the footer the command that made the data.
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Tidepool's lines stand out; peers share a muted palette.
OURS = {
    "tidepool-hnsw": "#d62728", "tidepool-hnsw-sq8": "#ff7f0e", "tidepool-flat": "#8b0000",
    "tidepool-ivf-sq8": "#e6550d", "tidepool-ivf-pq": "#a50f15",
}
PEERS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22", "#e377c2"]
MARKERS = "osD^vP*Xh<>"


def load(paths):
    runs, meta = [], None
    for path in paths:
        report = json.load(open(path))
        meta = meta or report
        for peer in report["peers"]:
            if not peer.get("sweep"):
                continue
            name = peer["name"]
            storage = (peer.get("params") or {}).get("storage")
            if name == "tidepool-hnsw" and storage not in (None, "f32", "none"):
                name = f"tidepool-hnsw-{storage}"
            runs.append((name, peer))
    return runs, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reports", nargs="+")
    ap.add_argument("--out", required=True, help=".svg or .png")
    ap.add_argument("--min-recall", type=float, default=0.85)
    ap.add_argument("--command", default="scripts/bench.sh", help="the command shown under the plot")
    a = ap.parse_args()
    runs, meta = load(a.reports)
    fig, ax = plt.subplots(figsize=(9, 6))
    for i, (name, peer) in enumerate(sorted(runs, key=lambda r: (not r[0].startswith("tidepool"), r[0]))):
        pts = sorted((s["recall"], s["qps"]) for s in peer["sweep"] if s["recall"] >= a.min_recall and s["qps"])
        if not pts:
            continue
        # ann-benchmarks draws the Pareto frontier: a setting slower and less accurate than another is hidden.
        frontier, best = [], 0.0
        for r, q in sorted(pts, key=lambda p: -p[0]):
            if q > best:
                frontier.append((r, q))
                best = q
        frontier.sort()
        ours = name in OURS
        color = OURS.get(name) or PEERS[i % len(PEERS)]
        ax.plot([p[0] for p in frontier], [p[1] for p in frontier], marker=MARKERS[i % len(MARKERS)], markersize=4,
                linewidth=2.4 if ours else 1.3, color=color, label=name)
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{meta.get('k', 10)}")
    ax.set_ylabel("queries per second, one query per call, one thread (log)")
    for x in (0.95, 0.99):
        ax.axvline(x, color="#999999", linewidth=0.8, linestyle=":")
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"{meta.get('dataset')} (n={meta.get('n')}, dim={meta.get('dim')}, {meta.get('metric')}), "
                 f"{str(meta.get('date', ''))[:10]}\n{meta.get('cpu', '')}, {meta.get('cores', '')} cores", fontsize=10)
    fig.text(0.01, 0.01, a.command, fontsize=7, family="monospace", color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    fig.savefig(a.out, metadata={"Date": None} if a.out.endswith(".svg") else None)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
