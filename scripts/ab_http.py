#!/usr/bin/env python3
"""A/B of the server's sustained query throughput: two `tidepool` binaries, alternating rounds,
one server at a time over the same data directory (pypi-minilm-100k imported and compacted).

    python3 scripts/ab_http.py OLD_BINARY NEW_BINARY [--rounds 4] [--duration 10]

Each round starts the binary, warms up for 2 s, runs `wrk -t1 -c8` with 200 real queries
(vector_b64, k 10, ef 64) and stops it with SIGTERM. Prints QPS and p99 per round and the
median ratio new/old. The machine is shared and noisy: alternate, and read medians.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_load import read_vecs, run_wrk, start_server, wrk_script  # noqa: E402

import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--dataset", default="../shared/datasets/pypi-minilm-100k")
    ap.add_argument("--data", default="/tmp/tidepool-ab-http")
    ap.add_argument("--port", type=int, default=8098)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=int, default=10)
    a = ap.parse_args()
    queries = read_vecs(os.path.join(a.dataset, "query.fvecs"), np.float32)
    if not os.path.exists(os.path.join(a.data, "collections", "pypi")):
        subprocess.run([a.old, "import", "--data", a.data, "--collection", "pypi", "--metric", "cosine",
                        os.path.join(a.dataset, "base.fvecs")], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([a.old, "compact", "--data", a.data], check=True)
    script = wrk_script(queries[:200], 0, 0, 64)
    results = {"old": [], "new": []}
    log = open(os.path.join(tempfile.gettempdir(), "tidepool-ab-http.log"), "w")
    for r in range(a.rounds):
        for label in (("old", "new") if r % 2 == 0 else ("new", "old")):
            proc, url, _ = start_server(getattr(a, label), a.data, a.port, log)
            run_wrk(url, script, 2, 8)
            s = run_wrk(url, script, a.duration, 8)
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            results[label].append(s)
            print(f"round {r} {label}: {s['qps']:.0f} QPS, p50 {s['p50_us'] / 1000:.2f} ms, "
                  f"p99 {s['p99_us'] / 1000:.2f} ms, errors {s['socket_errors'] + s['non2xx']}", flush=True)
    old = statistics.median(x["qps"] for x in results["old"])
    new = statistics.median(x["qps"] for x in results["new"])
    print(f"median QPS old {old:.0f}, new {new:.0f}, new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
