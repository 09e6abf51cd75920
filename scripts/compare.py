#!/usr/bin/env python3
"""Prints Tidepool's figures next to the peers' from JSON reports (peers.py schema):
compare.py TIDEPOOL.json PEERS.json [TIDEPOOL-SQ8.json]."""
import json
import sys


def main(tp_path, peers_path, sq8_path=None):
    tp = {p["name"]: p for p in json.load(open(tp_path))["peers"]}
    sq8 = next((p for p in json.load(open(sq8_path))["peers"] if p["name"].startswith("tidepool-hnsw")), None) if sq8_path else None
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
    if f and ff:
        for key, what in (("batch1_qps_at_0.95", "1 thread"), ("batch_qps_at_0.95", "2 threads")):
            rows.append((f"batched exact QPS tidepool-flat / faiss-flat ({what}, all queries in one call)",
                         f"{f.get(key)} / {ff.get(key)}", ratio(f.get(key), ff.get(key)) + " (target >= 1.0x)"))
    for peer in ("svs-vamana", "vsag-hgraph", "scann"):
        p = pr.get(peer)
        if not p:
            continue
        for name, t in (("f32", h), ("sq8", sq8)):
            if not t:
                continue
            rows.append((f"tidepool {name} single-query QPS at 0.95 / {peer} batch1_qps_at_0.95",
                         f'{t["qps_at_recall_0.95"]} / {p["batch1_qps_at_0.95"]}',
                         ratio(t["qps_at_recall_0.95"], p["batch1_qps_at_0.95"]) + (" (target >= 1.2x)" if peer == "svs-vamana" else "")))
            rows.append((f"tidepool {name} single-query QPS at 0.99 / {peer} QPS at 0.99",
                         f'{t["qps_at_recall_0.99"]} / {p["qps_at_recall_0.99"]}',
                         ratio(t["qps_at_recall_0.99"], p["qps_at_recall_0.99"]) + (" (target >= 1.0x)" if peer == "svs-vamana" else "")))
    rows += [
        ("ingest vectors/s (WAL, batched sync)", h["ingest_vps"], "target >= 50000"),
        ("reopen to first result (ms)", h["open_to_first_result_ms"], "target < 300"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value!s:>24}  {note}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
