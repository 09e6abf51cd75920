#!/usr/bin/env python3
"""Load-tests `tidepool serve` the way issue 5 asks, and prints the figures.

    python3 scripts/http_load.py [--dataset DIR] [--data DIR] [--duration 60]

Steps, all against one server process (release build, `--sync batched`):
  1. imports and compacts the dataset's base vectors into --data unless a collection is there;
  2. starts the server and times start -> /ready;
  3. recall@10 of the server's answers (at --ef, 64 by default) on all 1,000 queries against the exact ground truth;
  4. sustained queries: wrk -t1 -c8 for --duration seconds, 200 real queries as vector_b64;
  5. upsert throughput: 40,000 new vectors in batches of 1,000 from 2 clients;
  6. mixed load: wrk with 10% single-document upserts for --duration seconds (right after step 5,
     so the in-memory tier holds those 40,000 rows);
  7. counts the documents, stops the server with SIGTERM, restarts it and counts again: every
     acknowledged upsert must be there.
Needs: wrk (Debian package), requests, numpy.
"""
import argparse
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import requests

KEY = "load-test-key"
HDR = {"Authorization": f"Bearer {KEY}"}


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    return rows.view(dtype) if dtype != np.int32 else rows


def b64(v):
    return base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()


def start_server(binary, data, port, log):
    env = dict(os.environ, TIDEPOOL_API_KEYS=f"{KEY}:rw")
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "serve", "--data", data, "--port", str(port), "--sync", "batched"],
                            env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if requests.get(url + "/ready", timeout=1).status_code == 200:
                return proc, url, time.monotonic() - t0
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        time.sleep(0.005)


WRK_DONE = r"""
threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local t = {queries_ok = 0, upserts_ok = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
  end
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "socket_errors": %d, "non2xx": %d, ' ..
    '"queries_ok": %d, "upserts_ok": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status,
    t.queries_ok, t.upserts_ok,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

# Only the mixed run counts responses by kind (a response callback costs wrk, which shares the CPUs).
WRK_COUNT = r"""
queries_ok = 0
upserts_ok = 0
function response(status, headers, body)
  if status == 200 then
    if body:find('"upserted"', 1, true) then upserts_ok = upserts_ok + 1 else queries_ok = queries_ok + 1 end
  end
end
"""


def wrk_script(queries, upsert_every, first_upsert_id, ef=64):
    bodies = ",\n".join("  [[" + json.dumps({"vector_b64": b64(q), "k": 10, "ef": ef}) + "]]" for q in queries)
    vecs = ",\n".join(f'  "{b64(q)}"' for q in queries)
    return f"""bodies = {{
{bodies}
}}
vecs = {{
{vecs}
}}
counter = 0
upserts = 0
request = function()
  counter = counter + 1
  if {upsert_every} > 0 and counter % {upsert_every} == 0 then
    upserts = upserts + 1
    local body = '{{"documents":[{{"id":' .. ({first_upsert_id} + upserts) .. ',"vector_b64":"' .. vecs[(counter % #vecs) + 1] .. '"}}]}}'
    return wrk.format("POST", "/v1/collections/pypi/upsert", {{["Authorization"] = "Bearer {KEY}", ["Content-Type"] = "application/json"}}, body)
  end
  return wrk.format("POST", "/v1/collections/pypi/query", {{["Authorization"] = "Bearer {KEY}", ["Content-Type"] = "application/json"}}, bodies[(counter % #bodies) + 1])
end
""" + WRK_DONE + (WRK_COUNT if upsert_every > 0 else "")


def run_wrk(url, script, duration, connections):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", f.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    m = re.search(r"RESULT (\{.*\})", out)
    if not m:
        sys.exit("wrk printed no result:\n" + out)
    r = json.loads(m.group(1))
    r["qps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="../shared/datasets/pypi-minilm-100k")
    ap.add_argument("--data", default="/tmp/tidepool-http-load")
    ap.add_argument("--binary", default=".build/release/tidepool")
    ap.add_argument("--port", type=int, default=8097)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--ef", type=int, default=64, help="HNSW beam width of every query")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()

    base = read_vecs(os.path.join(a.dataset, "base.fvecs"), np.float32)
    queries = read_vecs(os.path.join(a.dataset, "query.fvecs"), np.float32)
    gt = read_vecs(os.path.join(a.dataset, "groundtruth.ivecs"), np.int32)
    if not os.path.exists(os.path.join(a.data, "collections", "pypi")):
        subprocess.run([a.binary, "import", "--data", a.data, "--collection", "pypi", "--metric", "cosine",
                        os.path.join(a.dataset, "base.fvecs")], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([a.binary, "compact", "--data", a.data], check=True)

    log = open(os.path.join(tempfile.gettempdir(), "tidepool-http-load.log"), "w")
    proc, url, ready_s = start_server(a.binary, a.data, a.port, log)
    figures = {"start_to_ready_ms": ready_s * 1000}
    start_count = requests.get(url + "/v1/collections/pypi", headers=HDR).json()["count"]
    print(f"start to ready: {ready_s * 1000:.1f} ms ({start_count} documents)")

    # Recall at the settings the load uses.
    hits = 0
    for i in range(len(queries)):
        r = requests.post(url + "/v1/collections/pypi/query", headers=HDR,
                          json={"vector_b64": b64(queries[i]), "k": 10, "ef": a.ef}).json()
        hits += len({h["id"] for h in r["results"]} & set(int(x) for x in gt[i][:10]))
    figures["recall_at_10"] = hits / (10 * len(queries))
    print(f"recall@10 at ef {a.ef} over HTTP: {figures['recall_at_10']:.3f}")

    s = run_wrk(url, wrk_script(queries[:200], 0, 0, a.ef), a.duration, a.connections)
    figures["sustained"] = s
    print(f"sustained {a.duration} s: {s['qps']:.0f} QPS, p50 {s['p50_us'] / 1000:.2f} ms, p99 {s['p99_us'] / 1000:.2f} ms, "
          f"errors {s['socket_errors'] + s['non2xx']}")

    # Upserts: 40 batches of 1,000 new vectors (perturbed copies of the base), 2 clients.
    rng = np.random.default_rng(7)
    batches = []
    for b in range(40):
        rows = base[b * 1000:(b + 1) * 1000] + rng.normal(0, 0.01, (1000, base.shape[1])).astype(np.float32)
        docs = [{"id": 1_000_000 + b * 1000 + j, "vector_b64": b64(v)} for j, v in enumerate(rows)]
        batches.append(json.dumps({"documents": docs}))
    failures = []
    def client(mine):
        with requests.Session() as sess:
            for body in mine:
                r = sess.post(url + "/v1/collections/pypi/upsert", headers=dict(HDR, **{"Content-Type": "application/json"}), data=body)
                if r.status_code != 200:
                    failures.append(r.text)
    t0 = time.monotonic()
    ts = [threading.Thread(target=client, args=(batches[i::2],)) for i in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
    up_s = time.monotonic() - t0
    figures["upsert_vectors_per_s"] = 40_000 / up_s
    figures["upsert_failures"] = len(failures)
    print(f"upsert: {40_000 / up_s:.0f} vectors/s (batches of 1,000, 2 clients), {len(failures)} failed")

    # The upserted rows are indexed in the background; time how long until all are in the graph.
    t0 = time.monotonic()
    while True:
        d = requests.get(url + "/v1/collections/pypi", headers=HDR).json()
        if d["memtable_indexed_rows"] >= d["memtable_rows"]:
            break
        time.sleep(0.05)
    figures["indexing_caught_up_s"] = time.monotonic() - t0
    print(f"in-memory rows indexed {figures['indexing_caught_up_s']:.1f} s after the last upsert")

    m = run_wrk(url, wrk_script(queries[:200], 10, 3_000_000, a.ef), a.duration, a.connections)
    figures["mixed"] = m
    print(f"mixed {a.duration} s (10% upserts): {m['qps']:.0f} requests/s, p50 {m['p50_us'] / 1000:.2f} ms, "
          f"p99 {m['p99_us'] / 1000:.2f} ms, queries ok {m['queries_ok']}, upserts ok {m['upserts_ok']}, "
          f"non-2xx {m['non2xx']}, socket errors {m['socket_errors']}")

    # Every acknowledged write is there, and still there after a restart.
    expected = start_count + (0 if failures else 40_000) + m["upserts_ok"]
    def count():
        return requests.get(url + "/v1/collections/pypi", headers=HDR).json()["count"]
    def missing_mixed_ids():
        # wrk stops with up to `connections` upserts in flight, which may or may not have landed;
        # every acknowledged one must be among the first upserts_ok + connections ids.
        ids = list(range(3_000_001, 3_000_001 + m["upserts_ok"] + a.connections))
        got = set()
        for i in range(0, len(ids), 1000):
            r = requests.post(url + "/v1/collections/pypi/get", headers=HDR, json={"ids": ids[i:i + 1000], "include_vectors": False}).json()
            got |= {d["id"] for d in r["documents"]}
        return max(0, m["upserts_ok"] - len(got))
    live = count()
    clean = m["non2xx"] + m["socket_errors"] == 0   # then the acknowledged ids are exactly the first upserts_ok
    miss = missing_mixed_ids() if clean else None
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    proc, url, ready2 = start_server(a.binary, a.data, a.port, log)
    after = count()
    miss2 = missing_mixed_ids() if clean else None
    figures["count_check"] = {"expected": expected, "live": live, "after_restart": after,
                              "missing_mixed_ids": miss, "missing_after_restart": miss2}
    print(f"documents: expected {expected}, counted {live}, after SIGTERM and restart {after}; "
          f"mixed-load ids missing: {miss} (after restart {miss2})")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=2)
    ok = (s["socket_errors"] + s["non2xx"] == 0 and m["socket_errors"] + m["non2xx"] == 0 and not failures
          and expected <= live <= expected + a.connections and after == live and miss == 0 and miss2 == 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
