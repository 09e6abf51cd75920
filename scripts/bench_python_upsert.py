#!/usr/bin/env python3
"""Bulk upsert through the Python client against a release `tidepool serve`, beside the server's own
rate (the same documents, pre-encoded before the clock starts, sent raw by as many threads as the
client sends in parallel), in one run.

    python3 scripts/bench_python_upsert.py --binary .build/release/tidepool \
        --vectors ../shared/datasets/pypi-minilm-100k/base.fvecs
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "clients", "python"))
import httpx  # noqa: E402

from tidepool_client import Client  # noqa: E402
from tidepool_client._wire import document_json, matrix_b64  # noqa: E402

KEY = "bench-key"


def read_fvecs(path):
    raw = np.fromfile(path, dtype="<i4")
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view("<f4").copy()


def serve(binary, port):
    data = tempfile.mkdtemp(prefix="tidepool-bench-")
    env = dict(os.environ, TIDEPOOL_API_KEYS=f"{KEY}:rw")
    proc = subprocess.Popen([binary, "serve", "--data", data, "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = Client(f"http://127.0.0.1:{port}", api_key=KEY, max_retries=0)
    for _ in range(400):
        try:
            if c.health():
                return proc, data
        except Exception:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def raw_rate(url, vecs, batch, threads):
    """The server's own rate: bodies encoded before the clock starts, posted by `threads` threads."""
    b64 = matrix_b64(vecs)
    bodies = [("{\"documents\":[" + ",".join(document_json(i, b64[i], None) for i in range(s, min(len(b64), s + batch)))
               + "]}").encode() for s in range(0, len(b64), batch)]
    queue = list(range(len(bodies)))
    lock = threading.Lock()

    def worker():
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as h:
            while True:
                with lock:
                    if not queue:
                        return
                    i = queue.pop()
                r = h.post("/v1/collections/raw/upsert", content=bodies[i])
                r.raise_for_status()

    h = httpx.post(f"{url}/v1/collections", json={"name": "raw", "dimension": vecs.shape[1], "metric": "cosine"},
                   headers={"Authorization": f"Bearer {KEY}"})
    h.raise_for_status()
    start = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(vecs) / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/tidepool")
    ap.add_argument("--vectors", default="../shared/datasets/pypi-minilm-100k/base.fvecs")
    ap.add_argument("--port", type=int, default=18765)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--order", default="raw,client", help="which runs, in order (each on a fresh server)")
    args = ap.parse_args()
    vecs = read_fvecs(args.vectors)
    report = {"vectors": len(vecs), "dimension": vecs.shape[1], "batch": args.batch, "parallel": args.parallel}
    for run in args.order.split(","):
        proc, data = serve(args.binary, args.port)
        url = f"http://127.0.0.1:{args.port}"
        try:
            if run == "raw":
                report.setdefault("server_raw_vectors_per_s", []).append(round(raw_rate(url, vecs, args.batch, args.parallel)))
            else:
                with Client(url, api_key=KEY) as c:
                    coll = c.create_collection("client", dimension=vecs.shape[1], metric="cosine")
                    start = time.perf_counter()
                    n = coll.upsert(np.arange(len(vecs)), vecs, batch_size=args.batch, parallel=args.parallel)
                    report.setdefault("client_vectors_per_s", []).append(round(n / (time.perf_counter() - start)))
                    assert coll.count == len(vecs), "every vector counted"
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            shutil.rmtree(data, ignore_errors=True)
    if "server_raw_vectors_per_s" in report and "client_vectors_per_s" in report:
        best = max(report["client_vectors_per_s"]) / max(report["server_raw_vectors_per_s"])
        report["client_to_raw_best"] = round(best, 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
