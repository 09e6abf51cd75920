#!/usr/bin/env python3
"""A cluster's tenancy and consistency, measured: SeaweedFS behind scripts/s3_latency_proxy.py
(GET 60 ms, PUT 100 ms), `tidepool serve --peers` nodes and HAProxy (deploy/haproxy.cfg).

    python3 scripts/bench_cluster.py --binary .build/release/tidepool tenants [--collections 1000] [--rows 200]
        [--cache-mb 12] [--warmup 90] [--seconds 60] [--close-idle 30] [--nodes 1,2,3] [--no-prime] [--json OUT]
    python3 scripts/bench_cluster.py --binary .build/release/tidepool strong [--trials 10000] [--threads 8] [--json OUT]
    python3 scripts/bench_cluster.py --binary .build/release/tidepool scale [--parts 16] [--rows 5000] [--seconds 20] [--json OUT]

tenants: three owner nodes create --collections collections of --rows rows (dimension 32, one
  segment each after a compaction). Then, for each count in --nodes, that many fresh query nodes
  (`--role query`, empty caches of --cache-mb each, collections idle --close-idle s closed)
  behind a fresh HAProxy are primed (every collection queried once: its compulsory miss), then
  take a Zipf(1.1) mix of eventual queries over the collections from 8 clients for --seconds
  (after --warmup): queries a second, the caches' hit rate (a lookup is a
  segment file opened: a hit is one the cache held), the queries' (share of queries whose
  segment reads all came from the cache), store requests per query (the proxy's counts), and
  queries per collection opening.
scale: --parts collections of --rows clustered 128-d vectors; query nodes pinned to one core each
  (`taskset`) behind HAProxy, one then two, take queries from wrk (2 threads, 16 connections,
  eventual reads, --rounds of --seconds): queries a second, and the ratio of two nodes to one.
strong: a write acknowledged by one node, then a strong read of it sent to another at once,
  --trials times over 8 collections from --threads threads: violations (the read missed the
  write) must be 0. Then eventual reads: how long after its acknowledgement a write is first
  seen by an eventual read on another node (the staleness distribution; the documented bound for
  a collection read continuously is twice --follow-interval, 2 s, plus one catch-up).
"""
import argparse, json, os, random, re, statistics, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drill_cluster import KEY, ROOT, Cluster, free_port, request  # noqa: E402


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def zipf_weights(n, s):
    w = [1 / (k ** s) for k in range(1, n + 1)]
    total = sum(w)
    return [x / total for x in w]


def metrics(port):
    """The node's Prometheus counters this benchmark reads."""
    c = __import__("http.client").client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    text = c.getresponse().read().decode()
    out = {}
    for name in ("tidepool_cache_hits", "tidepool_cache_misses"):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


def parallel(n, items, fn):
    items = list(items)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not items:
                    return
                item = items.pop()
            fn(item)
    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def tenants(a, cluster):
    names = [f"tenant{i:04d}" for i in range(a.collections)]
    rng = random.Random(1)

    def load(name):
        for attempt in range(20):
            s, o, _ = request(cluster.front, "POST", "/v1/collections", {"name": name, "dimension": 32, "metric": "l2"}, timeout=60)
            if s in (201, 409):
                break
            time.sleep(0.5)
        docs = [{"id": i, "vector": [random.Random(hash((name, i))).uniform(-1, 1) for _ in range(32)]} for i in range(a.rows)]
        for attempt in range(20):
            if request(cluster.front, "POST", f"/v1/collections/{name}/upsert", {"documents": docs}, timeout=60)[0] == 200:
                break
            time.sleep(0.5)
        request(cluster.front, "POST", f"/v1/collections/{name}/compact", {}, timeout=60)
    t = time.monotonic()
    parallel(16, names, load)
    print(f"loaded {len(names)} collections in {time.monotonic() - t:.0f} s", flush=True)
    # The owners finish their compactions and stop asking whether their collections were taken
    # over (they do for 30 s after a write): the store requests counted below are the queries'.
    time.sleep(40)
    weights = zipf_weights(len(names), 1.1)
    results = []
    for n in a.nodes:
        ports = [free_port() for _ in range(n)]
        nodes = []
        for k, port in enumerate(ports):
            nodes.append(cluster.serve(port, ["--role", "query", "--peers", cluster.peers, "--cache-bytes", str(a.cache_mb << 20),
                                              "--request-timeout", "2", "--close-idle-after", str(a.close_idle), "--node-name", f"q{k}"],
                                       f"{cluster.work}/qcache-{n}-{k}"))
        for port in ports:
            cluster.wait_ready(port)
        front = free_port()
        haproxy = start_haproxy(cluster, front, ports)
        counts = {"q": 0}
        lock = threading.Lock()

        def run(seconds, record):
            stop = time.monotonic() + seconds

            def client(seed):
                r = random.Random(seed)
                while time.monotonic() < stop:
                    name = r.choices(names, weights)[0]
                    s, _, _ = request(front, "POST", f"/v1/collections/{name}/query",
                                      {"vector": [r.uniform(-1, 1) for _ in range(32)], "k": 10, "consistency": "eventual"}, timeout=30)
                    if record and s == 200:
                        with lock:
                            counts["q"] += 1
            threads = [threading.Thread(target=client, args=(rng.random(),)) for _ in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        if a.prime:
            # Every collection queried once first: a collection's first query on a node is a
            # compulsory miss, and at ten queries a second a short run would count mostly those.
            def prime(name):
                request(front, "POST", f"/v1/collections/{name}/query",
                        {"vector": [0.0] * 32, "k": 10, "consistency": "eventual"}, timeout=30)
            parallel(8, names, prime)
        run(a.warmup, False)  # warm up
        before = [metrics(p) for p in ports]
        proxy_before = cluster.proxy_stats()
        t0 = time.monotonic()
        run(a.seconds, True)
        took = time.monotonic() - t0
        after = [metrics(p) for p in ports]
        proxy_after = cluster.proxy_stats()
        hits = sum(x["tidepool_cache_hits"] - y["tidepool_cache_hits"] for x, y in zip(after, before))
        misses = sum(x["tidepool_cache_misses"] - y["tidepool_cache_misses"] for x, y in zip(after, before))
        requests_ = {k: proxy_after.get(k, 0) - proxy_before.get(k, 0) for k in ("GET", "HEAD", "LIST", "PUT")}
        q = counts["q"]
        out = {"nodes": n, "queries": q, "qps": round(q / took, 1), "cache_lookups": hits + misses,
               "cache_hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
               # Queries whose segment reads all came from the node's cache (a collection open
               # already, or opened from its cached copy): each miss is one query that read the store.
               "query_hit_rate": round(1 - misses / q, 4) if q else None,
               "queries_per_open": round(q / (hits + misses), 1) if hits + misses else None,
               "store_requests_per_query": {k: round(v / q, 4) for k, v in requests_.items()} if q else {}}
        print(json.dumps(out), flush=True)
        results.append(out)
        haproxy.terminate()
        for p in nodes:
            p.terminate()
            p.wait()
    return {"collections": len(names), "rows": a.rows, "cache_mb": a.cache_mb, "runs": results}


def start_haproxy(cluster, front, ports):
    cfg = []
    for line in open(os.path.join(ROOT, "deploy/haproxy.cfg")):
        t = line.strip()
        if t.startswith("bind "):
            cfg.append(f"    bind 127.0.0.1:{front}\n")
        elif t.startswith("server "):
            if not any(c.strip().startswith("server q0 ") for c in cfg):
                cfg += [f"    server q{i} 127.0.0.1:{p} check\n" for i, p in enumerate(ports)]
        elif t.startswith("errorfile "):
            code, path = t.split()[1:3]
            cfg.append(f"    errorfile {code} {os.path.join(ROOT, 'deploy', path)}\n")
        else:
            cfg.append(line)
    path = f"{cluster.work}/haproxy-{front}.cfg"
    open(path, "w").writelines(cfg)
    import shutil
    p = subprocess.Popen([shutil.which("haproxy") or "/usr/sbin/haproxy", "-f", path, "-db"], stdout=cluster.log, stderr=cluster.log)
    until = time.monotonic() + 10
    while time.monotonic() < until:
        try:
            if request(front, "GET", "/ready", timeout=1)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    return p


def strong(a, cluster):
    names = [f"s{i}" for i in range(8)]
    for name in names:
        while request(cluster.front, "POST", "/v1/collections", {"name": name, "dimension": 4, "metric": "l2"})[0] not in (201, 409):
            time.sleep(0.2)
    ports = cluster.ports
    lock = threading.Lock()
    stats = {"trials": 0, "violations": 0, "write_failed": 0, "read_failed": 0}
    next_id = [1]

    def trial(_):
        with lock:
            i = next_id[0]
            next_id[0] += 1
        r = random.Random(i)
        name = r.choice(names)
        w, q = r.sample(range(len(ports)), 2)
        s, _, _ = request(ports[w], "POST", f"/v1/collections/{name}/upsert",
                          {"documents": [{"id": i, "vector": [float(i % 97), 1, 2, 3]}]}, timeout=30)
        if s != 200:
            with lock:
                stats["write_failed"] += 1
            return
        s, o, _ = request(ports[q], "POST", f"/v1/collections/{name}/get", {"ids": [i], "include_vectors": False}, timeout=30)
        with lock:
            stats["trials"] += 1
            if s != 200:
                stats["read_failed"] += 1
            elif not o.get("documents"):
                stats["violations"] += 1
    t = time.monotonic()
    parallel(a.threads, range(a.trials), trial)
    stats["seconds"] = round(time.monotonic() - t, 1)
    print(json.dumps(stats), flush=True)
    # Eventual reads: when a write is first seen on another node.
    delays = []

    def eventual(i):
        r = random.Random(i)
        name = r.choice(names)
        w, q = r.sample(range(len(ports)), 2)
        if request(ports[w], "POST", f"/v1/collections/{name}/upsert",
                   {"documents": [{"id": 10_000_000 + i, "vector": [1.0, 1, 2, 3]}]}, timeout=30)[0] != 200:
            return
        acked = time.monotonic()
        while time.monotonic() - acked < 30:
            s, o, _ = request(ports[q], "POST", f"/v1/collections/{name}/get",
                              {"ids": [10_000_000 + i], "include_vectors": False, "consistency": "eventual"}, timeout=30)
            if s == 200 and o.get("documents"):
                with lock:
                    delays.append(time.monotonic() - acked)
                return
            time.sleep(0.01)
    parallel(a.threads, range(a.eventual), eventual)
    ev = {"eventual_trials": len(delays), "seen_after_p50_s": round(pct(delays, 0.5), 3), "p90_s": round(pct(delays, 0.9), 3),
          "p99_s": round(pct(delays, 0.99), 3), "max_s": round(max(delays), 3)}
    print(json.dumps(ev), flush=True)
    return {**stats, **ev}


def cpu_seconds(pid):
    """User and system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def scale(a, cluster):
    """Queries a second through HAProxy with one query node, then two, each pinned to a core of
    its own (`taskset`), from `wrk` (HAProxy and wrk are not pinned: on two cores they share
    the nodes' cores, which is what two cores cannot hide)."""
    import base64, struct
    names = [f"part{i:02d}" for i in range(a.parts)]
    dim = 128
    rng = random.Random(5)
    centers = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(64)]

    def vec(r):
        c = r.choice(centers)
        return [x + r.gauss(0, 0.3) for x in c]

    def b64(v):
        return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()

    def load(name):
        r = random.Random(name)
        while request(cluster.front, "POST", "/v1/collections", {"name": name, "dimension": dim, "metric": "l2"}, timeout=60)[0] not in (201, 409):
            time.sleep(0.5)
        for start in range(0, a.rows, 500):
            docs = [{"id": start + i, "vector_b64": b64(vec(r))} for i in range(min(500, a.rows - start))]
            while request(cluster.front, "POST", f"/v1/collections/{name}/upsert", {"documents": docs}, timeout=120)[0] != 200:
                time.sleep(0.5)
        request(cluster.front, "POST", f"/v1/collections/{name}/compact", {}, timeout=60)
    t = time.monotonic()
    parallel(4, names, load)
    print(f"loaded {a.parts} collections of {a.rows} rows in {time.monotonic() - t:.0f} s", flush=True)
    time.sleep(40)
    # wrk's requests: a query of a random collection with a random vector, from a fixed pool.
    pool = []
    for i in range(512):
        r = random.Random(i)
        pool.append((r.choice(names), json.dumps({"vector_b64": b64(vec(r)), "k": 10, "consistency": "eventual"})))
    lua = f"{cluster.work}/queries.lua"
    with open(lua, "w") as f:
        f.write("local q = {\n")
        for name, body in pool:
            f.write(f"  {{'/v1/collections/{name}/query', {json.dumps(body)}}},\n")
        f.write("}\nlocal n = 0\n")
        f.write(f"wrk.method = 'POST'\nwrk.headers['Authorization'] = 'Bearer {KEY}'\nwrk.headers['Content-Type'] = 'application/json'\n")
        f.write("request = function()\n  n = n % #q + 1\n  return wrk.format(nil, q[n][1], nil, q[n][2])\nend\n")
        f.write("done = function(summary, latency, requests)\n  io.write(string.format('RESULT %d %d %d\\n', summary.requests, summary.errors.status, summary.duration))\nend\n")
    results = []
    for n in (1, 2):
        ports = [free_port() for _ in range(n)]
        nodes = [subprocess.Popen(["taskset", "-c", str(k), a.binary, "serve", "--storage", cluster.url, "--cache-dir",
                                   f"{cluster.work}/scache-{n}-{k}", "--port", str(port), "--role", "query", "--peers", cluster.peers,
                                   "--prewarm", "all", "--node-name", f"q{k}"], env=cluster.env, stdout=cluster.log, stderr=cluster.log)
                 for k, port in enumerate(ports)]
        for port in ports:
            cluster.wait_ready(port, within=300)
        front = free_port()
        haproxy = start_haproxy(cluster, front, ports)
        rounds, node_cpu, other_cpu = [], [], []
        for _ in range(a.rounds):
            before = [cpu_seconds(p.pid) for p in nodes] + [cpu_seconds(haproxy.pid)]
            w = subprocess.Popen(["wrk", "-t", "2", "-c", "16", "-d", f"{int(a.seconds)}s", "-s", lua, f"http://127.0.0.1:{front}"],
                                 stdout=subprocess.PIPE, text=True)
            # wrk's own CPU, read just before it exits
            wrk_cpu = 0.0
            while w.poll() is None:
                wrk_cpu = max(wrk_cpu, cpu_seconds(w.pid))
                time.sleep(0.2)
            out = w.stdout.read()
            after = [cpu_seconds(p.pid) for p in nodes] + [cpu_seconds(haproxy.pid)]
            m = re.search(r"RESULT (\d+) (\d+) (\d+)", out)
            reqs, errors, micros = (int(x) for x in m.groups())
            rounds.append(round(reqs / (micros / 1e6), 1))
            node_cpu.append(sum(after[k] - before[k] for k in range(n)) / reqs * 1e3)
            other_cpu.append(((after[n] - before[n]) + wrk_cpu) / reqs * 1e3)
            if errors:
                print(f"{errors} answers were not 2xx", flush=True)
        best = rounds.index(max(rounds))
        result = {"query_nodes": n, "qps_rounds": rounds, "qps": max(rounds),
                  # CPU milliseconds per query: the query nodes', and HAProxy's and wrk's together
                  "node_cpu_ms_per_query": round(node_cpu[best], 4), "haproxy_and_wrk_cpu_ms_per_query": round(other_cpu[best], 4)}
        print(json.dumps(result), flush=True)
        results.append(result)
        haproxy.terminate()
        for p in nodes:
            p.terminate()
            p.wait()
    ratio = results[1]["qps"] / results[0]["qps"]
    cpu = results[1]["node_cpu_ms_per_query"] / results[0]["node_cpu_ms_per_query"]
    print(f"two nodes / one: {ratio:.2f} the queries a second; {cpu:.2f} the nodes' CPU per query", flush=True)
    return {"collections": a.parts, "rows": a.rows, "dimension": dim, "runs": results, "ratio": round(ratio, 3),
            "node_cpu_per_query_ratio": round(cpu, 3)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binary", default=os.path.join(ROOT, ".build/release/tidepool"))
    p.add_argument("what", choices=["tenants", "strong", "scale"])
    p.add_argument("--parts", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--collections", type=int, default=1000)
    p.add_argument("--rows", type=int, default=200)
    p.add_argument("--cache-mb", type=int, default=12)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--warmup", type=float, default=90)
    p.add_argument("--close-idle", type=float, default=30)
    p.add_argument("--no-prime", dest="prime", action="store_false",
                   help="tenants: skip querying every collection once before the warm-up")
    p.add_argument("--nodes", default="1,2,3")
    p.add_argument("--trials", type=int, default=10000)
    p.add_argument("--eventual", type=int, default=500)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--json")
    a = p.parse_args()
    a.nodes = [int(x) for x in a.nodes.split(",")]
    work = tempfile.mkdtemp(prefix=f"tp-bench-cluster-{a.what}-")
    cluster = Cluster(a.binary, work, takeover_after=3)
    try:
        cluster.start()
        out = {"tenants": tenants, "strong": strong, "scale": scale}[a.what](a, cluster)
    finally:
        cluster.close()
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
