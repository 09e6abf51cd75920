#!/usr/bin/env python3
"""DiskANN's SSD index as the cold tier's anchor, configured as ../shared/bench/peers.py's
`diskann-disk` peer (diskannpy build_disk_index: R 64, build L 100, alpha 1.2, PQ codes of
dim/4 bytes per vector in memory, beam width 2, no cached nodes; DiskANN reads with O_DIRECT).

  build:  diskann_cold.py build --base B.fvecs --metric cosine --dir DIR [--threads 2]
  search: diskann_cold.py search --dir DIR --query Q.fvecs --gt GT.ivecs --L 10,20,40 [--max-queries N]

`search` loads only the queries and the ground truth, runs every query one at a time on one
thread, twice (the first pass from whatever the cache holds, the second timed as the steady
state), and prints one JSON line per L: recall@10, qps, p50_us, p99_us, first_pass_qps,
process_peak_rss_bytes. scripts/cold_bench.sh runs it inside a memory cgroup.
"""
import argparse, json, os, sys, time

import numpy as np


def read_vecs(path, dtype, max_rows=None):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    if max_rows is not None:
        rows = rows[:max_rows]
    return np.ascontiguousarray(rows.view(dtype) if dtype != np.int32 else rows)


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def build(a):
    import diskannpy
    base = read_vecs(a.base, np.float32)
    if a.metric == "cosine":
        base = np.ascontiguousarray(base / np.linalg.norm(base, axis=1, keepdims=True), dtype=np.float32)
    n, dim = base.shape
    pq_bytes = max(1, dim // 4)
    budget_gb = (n * pq_bytes + n // 2) / 2**30  # DiskANN: floor(budget / n) code bytes per vector
    os.makedirs(a.dir, exist_ok=True)
    t = time.time()
    diskannpy.build_disk_index(base, "mips" if a.metric == "ip" else "l2", a.dir, complexity=100, graph_degree=64,
                               search_memory_maximum=budget_gb, build_memory_maximum=4.0,
                               num_threads=a.threads, pq_disk_bytes=0)
    print(json.dumps({"build_s": round(time.time() - t, 3), "pq_bytes": pq_bytes}))


def search(a):
    import diskannpy
    q = read_vecs(a.query, np.float32, a.max_queries)
    if a.metric == "cosine":
        q = np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=np.float32)
    gt = read_vecs(a.gt, np.int32, a.max_queries)[:, :a.k]
    # num_threads=0 as peers.py: with 1, the search waits forever for a thread context bound to another thread.
    index = diskannpy.StaticDiskIndex(a.dir, num_threads=0, num_nodes_to_cache=0)
    for L in [int(x) for x in a.L.split(",")]:
        lat = np.zeros(len(q))
        first = None
        for _ in range(2):
            hits = 0
            t0 = time.perf_counter()
            for i in range(len(q)):
                s = time.perf_counter()
                # diskannpy 0.7.0 under numpy 2: single-query search() is wrong; a one-row batch is right.
                ids = index.batch_search(q[i:i + 1], a.k, L, 1, beam_width=2).identifiers[0]
                lat[i] = (time.perf_counter() - s) * 1e6
                hits += len(set(ids.tolist()) & set(gt[i].tolist()))
            qps = len(q) / (time.perf_counter() - t0)
            first = qps if first is None else first
        lat.sort()
        print(json.dumps({"param": L, "recall": round(hits / (len(q) * a.k), 5), "qps": round(qps, 1),
                          "p50_us": round(float(np.percentile(lat, 50)), 1),
                          "p99_us": round(float(np.percentile(lat, 99)), 1),
                          "first_pass_qps": round(first, 1), "process_peak_rss_bytes": peak_rss()}), flush=True)


p = argparse.ArgumentParser()
p.add_argument("mode", choices=["build", "search"])
p.add_argument("--base"); p.add_argument("--query"); p.add_argument("--gt"); p.add_argument("--dir", required=True)
p.add_argument("--metric", default="cosine"); p.add_argument("--threads", type=int, default=2)
p.add_argument("--L", default="10,16,20,32,48,64,96,128"); p.add_argument("--k", type=int, default=10)
p.add_argument("--max-queries", type=int)
a = p.parse_args()
build(a) if a.mode == "build" else search(a)
