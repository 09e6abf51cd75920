#!/usr/bin/env python3
"""Object storage, measured through S3-like latency: `tidepool serve --storage` over SeaweedFS
behind scripts/s3_latency_proxy.py (GET 60 ms, PUT 100 ms by default), on pypi-minilm-100k.

    python3 scripts/bench_object_storage.py --binary .build/release/tidepool [--rows 100000]
        [--clients 8] [--batch 100] [--get-ms 60] [--put-ms 100] [--idle 60] [--json OUT]

Steps (figures printed as they come, and as JSON with --json):
  1. SeaweedFS (scripts/seaweedfs.sh) and the proxy start; a writer serves s3://tidepool-test/bench-…
     through the proxy; a collection (cosine, HNSW) is created.
  2. Upserts: --clients threads send --batch documents per request (vector_b64) until --rows are
     in; each request's acknowledgement latency (p50, p99) and the sustained vectors per second.
  3. A query node (--read-only, empty cache) starts: time to /ready, and to its first answer that
     matches the exact top 10 of that query (recall 1.0 there, or the best of 5 queries).
  4. Warm queries on the query node, one client: QPS at ef 64 and recall@10 on the 1,000
     queries with eventual reads, 100 with strong reads; the same on a local-directory server
     holding the same rows (tidepool import + serve --data): the ratio.
  5. Idle: --idle seconds with both nodes up and no traffic; the proxy counts LIST and PUT/POST
     requests in that window.
Needs numpy and a release build.
"""
import argparse, base64, http.client, json, os, signal, statistics, subprocess, sys, tempfile, threading, time
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from http_load import b64, read_vecs  # noqa: E402
KEY = "bench-object-storage-key"
HDR = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def free_port():
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=HDR)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else {})


def wait_ready(port, proc, t0):
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ready"); r = c.getresponse(); r.read()
            if r.status == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        time.sleep(0.005)


def serve(binary, args, port, env, log):
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "serve", *args, "--port", str(port)], env=env, stdout=log, stderr=log)
    return p, wait_ready(port, p, t0), t0


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--dataset", default=os.path.join(HERE, "..", "..", "shared", "datasets", "pypi-minilm-100k"))
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--get-ms", type=float, default=60)
    ap.add_argument("--put-ms", type=float, default=100)
    ap.add_argument("--idle", type=int, default=60)
    ap.add_argument("--json")
    a = ap.parse_args()
    base = read_vecs(os.path.join(a.dataset, "base.fvecs"), np.float32)[: a.rows]
    queries = read_vecs(os.path.join(a.dataset, "query.fvecs"), np.float32)
    gt = read_vecs(os.path.join(a.dataset, "groundtruth.ivecs"), np.int32)[:, :10]
    if a.rows < 100000:
        # Exact top 10 within the subset, for recall.
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        gt = np.argsort(-(q @ b.T), axis=1)[:, :10]
    work = tempfile.mkdtemp(prefix="tidepool-bench-s3-")
    log = open(os.path.join(work, "log"), "w")
    out = {"rows": a.rows, "clients": a.clients, "batch": a.batch, "get_ms": a.get_ms, "put_ms": a.put_ms}
    procs = []
    try:
        env_lines = subprocess.run([os.path.join(HERE, "seaweedfs.sh"), "start", os.path.join(work, "s3")], check=True,
                                   capture_output=True, text=True).stdout
        env = dict(os.environ)
        for line in env_lines.splitlines():
            k, v = line.replace("export ", "").split("=", 1)
            env[k] = v
        proxy_port = free_port()
        stats = os.path.join(work, "proxy-stats.json")
        proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "s3_latency_proxy.py"), "--listen", str(proxy_port),
                                  "--upstream", env["TIDEPOOL_TEST_S3_ENDPOINT"].replace("http://", ""),
                                  "--get-ms", str(a.get_ms), "--put-ms", str(a.put_ms), "--stats", stats], stdout=log, stderr=log)
        procs.append(proxy)
        time.sleep(0.5)
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{proxy_port}"
        env["TIDEPOOL_API_KEYS"] = f"{KEY}:rw"
        url = f"s3://tidepool-test/bench-{os.getpid()}"

        wport = free_port()
        writer, wready, _ = serve(a.binary, ["--storage", url, "--cache-dir", os.path.join(work, "cache-w")], wport, env, log)
        procs.append(writer)
        out["writer_ready_s"] = wready
        st, o = Client(wport).call("POST", "/v1/collections", {"name": "pypi", "dimension": 384, "metric": "cosine"})
        assert st == 201, o

        # 2. Upserts from --clients threads.
        latencies, lock, next_row = [], threading.Lock(), [0]
        def upserter():
            c = Client(wport)
            while True:
                with lock:
                    start = next_row[0]; next_row[0] += a.batch
                if start >= a.rows:
                    return
                docs = [{"id": i, "vector_b64": b64(base[i])} for i in range(start, min(a.rows, start + a.batch))]
                t = time.monotonic()
                st, o = c.call("POST", "/v1/collections/pypi/upsert", {"documents": docs})
                dt = time.monotonic() - t
                assert st == 200, o
                with lock:
                    latencies.append(dt)
        t0 = time.monotonic()
        threads = [threading.Thread(target=upserter) for _ in range(a.clients)]
        for t in threads: t.start()
        for t in threads: t.join()
        elapsed = time.monotonic() - t0
        out["upsert_p50_ms"] = pct(latencies, 0.5) * 1000
        out["upsert_p99_ms"] = pct(latencies, 0.99) * 1000
        out["upsert_vectors_per_s"] = a.rows / elapsed
        print(f"upserts: {a.rows} vectors in {elapsed:.1f} s = {a.rows / elapsed:,.0f}/s; ack p50 {out['upsert_p50_ms']:.0f} ms, "
              f"p99 {out['upsert_p99_ms']:.0f} ms ({a.clients} clients, {a.batch} per request)", flush=True)
        # Let the writer's background flushes finish (segments uploaded) before the cold start.
        for _ in range(600):
            st, info = Client(wport).call("GET", "/v1/collections/pypi")
            if info.get("memtable_rows", 0) < 70000 and info.get("memtable_indexed_rows", 0) >= info.get("memtable_rows", 0):
                break
            time.sleep(0.5)
        out["writer_segments"] = len(info.get("segments", []))
        out["writer_memtable_rows"] = info.get("memtable_rows")

        # 3. A fresh query node with an empty cache.
        qport = free_port()
        qnode, qready, qt0 = serve(a.binary, ["--storage", url, "--cache-dir", os.path.join(work, "cache-q"), "--read-only"],
                                   qport, env, log)
        procs.append(qnode)
        qc = Client(qport)
        first = None
        for i in range(5):
            st, o = qc.call("POST", "/v1/collections/pypi/query", {"vector_b64": b64(queries[i]), "k": 10})
            assert st == 200, o
            got = {h["id"] for h in o["results"]}
            if len(got & set(gt[i].tolist())) >= 9:
                first = time.monotonic() - qt0
                break
        out["query_node_ready_s"] = qready
        out["query_node_first_correct_answer_s"] = first
        print(f"fresh query node: /ready after {qready:.2f} s, first correct answer after "
              f"{first if first is None else round(first, 2)} s", flush=True)

        # 4. Warm queries, strong consistency, against a local-directory server with the same rows.
        def qps(port, consistency="strong", n=len(queries)):
            c = Client(port)
            body = lambda q: {"vector_b64": b64(q), "k": 10, "ef": 64, "consistency": consistency}
            for q in queries[:20]:
                c.call("POST", "/v1/collections/pypi/query", body(q))
            hits, t = 0, time.monotonic()
            for i, q in enumerate(queries[:n]):
                st, o = c.call("POST", "/v1/collections/pypi/query", body(q))
                hits += len({h["id"] for h in o["results"]} & set(gt[i].tolist()))
            return n / (time.monotonic() - t), hits / (10 * n)
        fvecs = os.path.join(work, "base.fvecs")
        rows = np.concatenate([np.full((a.rows, 1), 384, dtype=np.int32), base.view(np.int32)], axis=1)
        rows.tofile(fvecs)
        local_dir = os.path.join(work, "local")
        subprocess.run([a.binary, "import", "--data", local_dir, "--collection", "pypi", "--metric", "cosine", fvecs],
                       check=True, stdout=log, stderr=log)
        lport = free_port()
        local, _, _ = serve(a.binary, ["--data", local_dir], lport, env, log)
        procs.append(local)
        results = {}
        for round_ in range(2):
            for name, port, level in (("eventual", qport, "eventual"), ("local", lport, "strong")):
                results.setdefault(name, []).append(qps(port, level))
        # Strong reads probe the store once per request that finds no probe younger than itself:
        # with one client, every query is such a request.
        results["strong"] = [qps(qport, "strong", 100)]
        for name in results:
            out[f"warm_qps_{name}"] = statistics.median(r[0] for r in results[name])
            out[f"recall_{name}"] = results[name][-1][1]
        print(f"warm queries (ef 64, one client): query node eventual {out['warm_qps_eventual']:,.0f} QPS "
              f"(ratio to local {out['warm_qps_eventual'] / out['warm_qps_local']:.3f}), strong {out['warm_qps_strong']:,.1f} QPS, "
              f"local {out['warm_qps_local']:,.0f} QPS; recall@10 {out['recall_eventual']:.4f} vs local {out['recall_local']:.4f}",
              flush=True)

        # 5. Idle window: what the nodes ask of the store with no traffic.
        def proxy_counts():
            proxy.send_signal(signal.SIGUSR1); time.sleep(0.3)
            return json.load(open(stats))
        before = proxy_counts()
        time.sleep(a.idle)
        after = proxy_counts()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        out["idle_seconds"] = a.idle
        out["idle_requests"] = delta
        print(f"idle {a.idle} s: LIST {delta.get('LIST', 0)}, PUT {delta.get('PUT', 0)}, POST {delta.get('POST', 0)}, "
              f"HEAD {delta.get('HEAD', 0)}, GET {delta.get('GET', 0)}", flush=True)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try: p.wait(timeout=20)
            except subprocess.TimeoutExpired: p.kill()
        subprocess.run([os.path.join(HERE, "seaweedfs.sh"), "stop", os.path.join(work, "s3")])
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
