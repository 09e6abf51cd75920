#!/usr/bin/env python3
"""Object storage, measured through S3-like latency: `tidepool serve --storage` over SeaweedFS
behind scripts/s3_latency_proxy.py (GET 60 ms, PUT 100 ms by default), on pypi-minilm-100k.

    python3 scripts/bench_object_storage.py --binary .build/release/tidepool [--rows 100000]
        [--clients 8] [--batch 100] [--sustained-clients 32] [--sustained-batch 250] [--get-ms 60] [--put-ms 100] [--idle 60] [--upserts-only] [--json OUT]

Steps (figures printed as they come, and as JSON with --json):
  1. SeaweedFS (scripts/seaweedfs.sh) and the proxy start; a writer serves s3://tidepool-test/bench-…
     through the proxy, and a local-directory server (`serve --data`) runs beside it.
  2. Upserts into the writer. First the sustained rate: --sustained-clients (32) threads send
     --sustained-batch (250) documents per request (vector_b64) until --rows are in, into a
     collection dropped right after. Then --clients threads send --batch documents per request:
     each request's acknowledgement latency (p50, p99) and vectors per second. The same rows go
     into two more collections on the writer (HNSW + SQ8,
     IVF-PQ) and into the same three collections on the local server; every collection is then
     compacted to one segment (POST …/compact), so both sides hold the same layout.
  3. Per collection, a fresh query node (--read-only, an empty cache of its own) starts: time to
     /ready, and to its first answer from that collection that matches the exact top 10 of the
     query (9 of 10, or the best of 5 queries). Then the query node for step 4 starts with
     --prewarm all: time to /ready with every collection in its cache.
  4. Warm queries on the query node, one client, ef 64: QPS and recall@10 on the 1,000 queries
     with eventual and with strong reads, against the local server: the ratios. Recall is also
     taken on the writer, whose segments the query node reads (the local server built its own
     graphs, with threads, so its recall differs by build-to-build noise).
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

    def call(self, method, path, body=None, raw=None):
        self.conn.request(method, path, body=raw if raw is not None else json.dumps(body) if body is not None else None, headers=HDR)
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


COLLECTIONS = [("pypi", {}), ("pypi_sq8", {"quantization": "sq8"}), ("pypi_ivfpq", {"index": "ivf", "quantization": "pq"})]


def load(port, name, config, base, clients, batch):
    """Creates `name` and upserts `base` from `clients` threads; returns (latencies, seconds)."""
    st, o = Client(port).call("POST", "/v1/collections", {"name": name, "dimension": 384, "metric": "cosine", "config": config})
    assert st == 201, o
    # Bodies are encoded before the clock starts: the clients' Python (one core under the GIL)
    # must not be what is measured.
    bodies = [json.dumps({"documents": [{"id": i, "vector_b64": b64(base[i])} for i in range(s, min(len(base), s + batch))]})
              for s in range(0, len(base), batch)]
    latencies, lock, next_body = [], threading.Lock(), [0]
    def upserter():
        c = Client(port)
        while True:
            with lock:
                i = next_body[0]; next_body[0] += 1
            if i >= len(bodies):
                return
            t = time.monotonic()
            st, o = c.call("POST", f"/v1/collections/{name}/upsert", raw=bodies[i])
            dt = time.monotonic() - t
            assert st == 200, o
            with lock:
                latencies.append(dt)
    t0 = time.monotonic()
    threads = [threading.Thread(target=upserter) for _ in range(clients)]
    for t in threads: t.start()
    for t in threads: t.join()
    return latencies, time.monotonic() - t0


def compact(port, name):
    st, o = Client(port).call("POST", f"/v1/collections/{name}/compact", {})
    assert st == 202, o


def wait_compacted(port, name):
    for _ in range(2400):
        st, info = Client(port).call("GET", f"/v1/collections/{name}")
        if len(info.get("segments", [])) == 1 and info.get("memtable_rows", 1) == 0:
            return
        time.sleep(0.5)
    sys.exit(f"{name} on port {port} was not compacted in 20 minutes: {info}")


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
    ap.add_argument("--sustained-clients", type=int, default=32)
    ap.add_argument("--sustained-batch", type=int, default=250)
    ap.add_argument("--upserts-only", action="store_true", help="stop after step 2's timed upserts")
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

        wport, lport = free_port(), free_port()
        writer, wready, _ = serve(a.binary, ["--storage", url, "--cache-dir", os.path.join(work, "cache-w")], wport, env, log)
        procs.append(writer)
        out["writer_ready_s"] = wready
        local, _, _ = serve(a.binary, ["--data", os.path.join(work, "local")], lport, env, log)
        procs.append(local)

        # 2. Sustained ingest first: more clients and larger requests, into a collection of its own
        # (dropped at once: its indexing, abandoned, does not run on into the later steps).
        latencies, elapsed = load(wport, "pypi_sustained", {}, base, a.sustained_clients, a.sustained_batch)
        out["sustained_vectors_per_s"] = a.rows / elapsed
        out["sustained_p50_ms"] = pct(latencies, 0.5) * 1000
        out["sustained_p99_ms"] = pct(latencies, 0.99) * 1000
        print(f"sustained upserts: {a.rows / elapsed:,.0f} vectors/s; ack p50 {out['sustained_p50_ms']:.0f} ms, "
              f"p99 {out['sustained_p99_ms']:.0f} ms ({a.sustained_clients} clients, {a.sustained_batch} per request)", flush=True)
        st, o = Client(wport).call("DELETE", "/v1/collections/pypi_sustained")
        assert st == 200, o
        # Then the upserts whose latency counts, and the same rows everywhere, compacted to one segment.
        latencies, elapsed = load(wport, "pypi", {}, base, a.clients, a.batch)
        out["upsert_p50_ms"] = pct(latencies, 0.5) * 1000
        out["upsert_p99_ms"] = pct(latencies, 0.99) * 1000
        out["upsert_vectors_per_s"] = a.rows / elapsed
        print(f"upserts: {a.rows} vectors in {elapsed:.1f} s = {a.rows / elapsed:,.0f}/s; ack p50 {out['upsert_p50_ms']:.0f} ms, "
              f"p99 {out['upsert_p99_ms']:.0f} ms ({a.clients} clients, {a.batch} per request)", flush=True)
        if a.upserts_only:
            return
        for name, config in COLLECTIONS:
            if name != "pypi":
                load(wport, name, config, base, a.clients, a.batch)
            load(lport, name, config, base, a.clients, a.batch)
        for name, _ in COLLECTIONS:  # one at a time: six builds at once on 2 cores starve everything
            compact(wport, name); compact(lport, name)
            wait_compacted(wport, name); wait_compacted(lport, name)
        print("loaded and compacted: " + ", ".join(n for n, _ in COLLECTIONS), flush=True)

        # 3. Per collection, a fresh query node with an empty cache of its own: time to /ready, and
        # to its first correct answer from that collection (a node opens a collection on first use).
        def first_correct(port, name, t0):
            c = Client(port)
            for i in range(5):
                st, o = c.call("POST", f"/v1/collections/{name}/query", {"vector_b64": b64(queries[i]), "k": 10})
                assert st == 200, o
                if len({h["id"] for h in o["results"]} & set(gt[i].tolist())) >= 9:
                    return time.monotonic() - t0
            return None
        for name, _ in COLLECTIONS:
            port = free_port()
            node, ready, t0 = serve(a.binary, ["--storage", url, "--cache-dir", os.path.join(work, "cache-cold-" + name), "--read-only"],
                                    port, env, log)
            try:
                first = first_correct(port, name, t0)
            finally:
                node.send_signal(signal.SIGTERM); node.wait(timeout=20)
            out[f"query_node_ready_s_{name}"] = ready
            out[f"first_correct_answer_s_{name}"] = first
            print(f"fresh query node for {name}: /ready after {ready:.2f} s; first correct answer after "
                  f"{first if first is None else round(first, 2)} s", flush=True)
        # The node the warm queries go to: every collection opened before it is ready.
        qport = free_port()
        qnode, qready, _ = serve(a.binary, ["--storage", url, "--cache-dir", os.path.join(work, "cache-q"), "--read-only",
                                            "--prewarm", "all"], qport, env, log)
        procs.append(qnode)
        out["query_node_prewarm_all_ready_s"] = qready
        print(f"query node with --prewarm all: /ready after {qready:.2f} s", flush=True)

        # 4. Warm queries, one client, eventual and strong, against the local server.
        def qps(port, name, consistency):
            c = Client(port)
            body = lambda q: {"vector_b64": b64(q), "k": 10, "ef": 64, "consistency": consistency}
            for q in queries[:20]:
                c.call("POST", f"/v1/collections/{name}/query", body(q))
            hits, t = 0, time.monotonic()
            for i, q in enumerate(queries):
                st, o = c.call("POST", f"/v1/collections/{name}/query", body(q))
                hits += len({h["id"] for h in o["results"]} & set(gt[i].tolist()))
            return len(queries) / (time.monotonic() - t), hits / (10 * len(queries))
        for name, _ in COLLECTIONS:
            results = {}
            for _ in range(2):
                for mode, port, level in (("eventual", qport, "eventual"), ("strong", qport, "strong"), ("writer", wport, "strong"),
                                          ("local", lport, "strong")):
                    results.setdefault(mode, []).append(qps(port, name, level))
            for mode in results:
                out[f"warm_qps_{mode}_{name}"] = statistics.median(r[0] for r in results[mode])
                out[f"recall_{mode}_{name}"] = results[mode][-1][1]
            loc = out[f"warm_qps_local_{name}"]
            print(f"warm queries on {name} (ef 64, one client): strong {out[f'warm_qps_strong_{name}']:,.0f} QPS "
                  f"({out[f'warm_qps_strong_{name}'] / loc:.3f} of local), eventual {out[f'warm_qps_eventual_{name}']:,.0f} "
                  f"({out[f'warm_qps_eventual_{name}'] / loc:.3f}), local {loc:,.0f}; recall@10 strong "
                  f"{out[f'recall_strong_{name}']:.4f}, writer {out[f'recall_writer_{name}']:.4f} (the same segments), local "
                  f"{out[f'recall_local_{name}']:.4f} (its own build)", flush=True)

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
