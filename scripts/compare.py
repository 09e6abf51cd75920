#!/usr/bin/env python3
"""Prints Tidepool's figures next to the peers' from two JSON reports (peers.py schema)."""
import json
import sys


def main(tp_path, peers_path):
    tp = {p["name"]: p for p in json.load(open(tp_path))["peers"]}
    pr = {p["name"]: p for p in json.load(open(peers_path))["peers"] if "sweep" in p}
    h, f = tp["tidepool-hnsw"], tp.get("tidepool-flat")
    hn, ff = pr.get("hnswlib"), pr.get("faiss-flat")

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "n/a"

    rows = [("tidepool single-query QPS at recall>=0.95", h["qps_at_recall_0.95"], "")]
    if hn:
        rows += [
            ("hnswlib batch1_qps_at_0.95 (1 thread, no per-call overhead)", hn["batch1_qps_at_0.95"],
             ratio(h["qps_at_recall_0.95"], hn["batch1_qps_at_0.95"]) + " (target >= 0.8x)"),
            ("hnswlib single-query QPS at 0.95 (Python per call)", hn["qps_at_recall_0.95"],
             ratio(h["qps_at_recall_0.95"], hn["qps_at_recall_0.95"])),
            ("tidepool build_s / hnswlib build_s (2 threads)", f'{h["build_s"]} / {hn["build_s"]}',
             ratio(h["build_s"], hn["build_s"]) + " (target <= 1.25x)"),
            ("tidepool resident bytes / hnswlib index_bytes", f'{h["resident_bytes"]} / {hn["index_bytes"]}',
             ratio(h["resident_bytes"], hn["index_bytes"]) + " (target <= 1.3x)"),
            ("tidepool batch QPS (2 threads) / hnswlib", f'{h["batch_qps_at_0.95"]} / {hn["batch_qps_at_0.95"]}',
             ratio(h["batch_qps_at_0.95"], hn["batch_qps_at_0.95"])),
        ]
    if f and ff:
        fq, pq = f["sweep"][0]["qps"], ff["sweep"][0]["qps"]
        rows.append(("exact QPS tidepool-flat / faiss-flat (1 thread, 1 query per call)", f"{fq} / {pq}",
                     ratio(fq, pq) + " (target >= 0.8x)"))
    rows += [
        ("ingest vectors/s (WAL, batched sync)", h["ingest_vps"], "target >= 50000"),
        ("reopen to first result (ms)", h["open_to_first_result_ms"], "target < 300"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value!s:>24}  {note}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
