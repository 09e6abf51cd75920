#!/usr/bin/env python3
"""Fault drill 1 of the cluster: kill -9 the writer of a busy collection, again and again.

    python3 scripts/cluster_drill.py --binary .build/release/tidepool --kills 20 --takeover-after 3 [--json F]

SeaweedFS behind scripts/s3_latency_proxy.py (GET 60 ms, PUT 100 ms), three `tidepool serve`
nodes with --peers (any may become the writer), and HAProxy with deploy/haproxy.cfg in front.
Writer clients upsert batches with unique ids through HAProxy and record every acknowledged id;
each round kills the node that is the writer (SIGKILL), measures how long until writes are
acknowledged again (the pause), and restarts the killed node (it rejoins as a standby). At the
end a fresh query node reads every id back with strong reads: acknowledged ids missing are
lost writes, ids never acknowledged but present are writes whose answer was lost. Prints and
writes (--json) the counts and the pause distribution.
"""
import argparse, http.client, json, os, random, signal, statistics, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_object_storage as B  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def request(port, method, path, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, json.dumps(body) if body is not None else None, headers=B.HDR)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data and data[:1] == b"{" else {})
    finally:
        c.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binary", default=os.path.join(ROOT, ".build/release/tidepool"))
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--takeover-after", type=float, default=3)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json")
    a = p.parse_args()
    random.seed(a.seed)
    work = tempfile.mkdtemp(prefix="tp-drill-")
    log = open(os.path.join(work, "log"), "w")
    procs = []
    env_lines = subprocess.run([os.path.join(ROOT, "scripts/seaweedfs.sh"), "start", work + "/s3"], check=True,
                               capture_output=True, text=True).stdout
    env = dict(os.environ)
    for line in env_lines.splitlines():
        k, v = line.replace("export ", "").split("=", 1)
        env[k] = v
    try:
        pp = B.free_port()
        procs.append(subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts/s3_latency_proxy.py"), "--listen", str(pp),
                                       "--upstream", env["TIDEPOOL_TEST_S3_ENDPOINT"].replace("http://", "")],
                                      stdout=log, stderr=log, start_new_session=True))
        time.sleep(0.5)
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{pp}"
        env["TIDEPOOL_API_KEYS"] = f"{B.KEY}:rw"
        url = f"s3://{env.get('TIDEPOOL_TEST_S3_BUCKET', 'tidepool-test')}/drill-{os.getpid()}"
        ports = [B.free_port() for _ in range(3)]
        peers = ",".join(f"http://127.0.0.1:{q}" for q in ports)
        nodes = {}

        def start(i):
            args = [a.binary, "serve", "--storage", url, "--cache-dir", f"{work}/cache{i}", "--port", str(ports[i]),
                    "--advertise-url", f"http://127.0.0.1:{ports[i]}", "--peers", peers,
                    "--takeover-after", str(a.takeover_after), "--node-name", f"n{i}"]
            nodes[i] = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        for i in range(3):
            start(i)
        # The load balancer, the shipped configuration with these nodes.
        front = B.free_port()
        cfg = []
        for line in open(os.path.join(ROOT, "deploy/haproxy.cfg")):
            t = line.strip()
            if t.startswith("bind "):
                cfg.append(f"    bind 127.0.0.1:{front}\n")
            elif t.startswith("server "):
                if not any(l.strip().startswith("server n0 ") for l in cfg):
                    cfg += [f"    server n{i} 127.0.0.1:{ports[i]} check\n" for i in range(3)]
            else:
                cfg.append(line)
        open(f"{work}/haproxy.cfg", "w").writelines(cfg)
        haproxy = subprocess.Popen(["haproxy", "-f", f"{work}/haproxy.cfg", "-db"], stdout=log, stderr=log)
        procs.append(haproxy)
        for i in range(3):
            B.wait_ready(ports[i], nodes[i], time.monotonic())
        deadline = time.monotonic() + 60
        while True:
            s, o = request(front, "POST", "/v1/collections", {"name": "c", "dimension": 4, "metric": "l2"})
            if s in (201, 409):
                break
            if time.monotonic() > deadline:
                sys.exit(f"cannot create the collection: {s} {o}")
            time.sleep(0.2)

        acked, failed_ids, statuses, lock, stop = set(), set(), {}, threading.Lock(), threading.Event()
        last_ack = [time.monotonic()]
        next_id = [0]

        def writer():
            while not stop.is_set():
                with lock:
                    first = next_id[0]
                    next_id[0] += 10
                ids = list(range(first, first + 10))
                body = {"documents": [{"id": i, "vector": [float(i % 97), 1.0, 2.0, 3.0]} for i in ids]}
                try:
                    s, _ = request(front, "POST", "/v1/collections/c/upsert", body, timeout=30)
                except OSError:
                    s = "conn"
                with lock:
                    statuses[str(s)] = statuses.get(str(s), 0) + 1
                    if s == 200:
                        acked.update(ids)
                        last_ack[0] = time.monotonic()
                    else:
                        failed_ids.update(ids)
                if s != 200:
                    time.sleep(0.05)
        threads = [threading.Thread(target=writer, daemon=True) for _ in range(a.clients)]
        for t in threads:
            t.start()

        def writer_index():
            for i in range(3):
                try:
                    if request(ports[i], "GET", "/v1/collections/c/head", timeout=2)[0] == 200:
                        return i
                except OSError:
                    pass
            return None
        pauses = []
        for k in range(a.kills):
            time.sleep(1 + random.random() * 2)
            w = writer_index()
            if w is None:
                print(f"kill {k}: no writer found", flush=True)
                continue
            killed_at = time.monotonic()
            nodes[w].send_signal(signal.SIGKILL)
            nodes[w].wait()
            # The pause: from the kill to the first write acknowledged after it.
            while time.monotonic() - killed_at < 60:
                with lock:
                    if last_ack[0] > killed_at:
                        break
                time.sleep(0.02)
            with lock:
                pause = last_ack[0] - killed_at
            pauses.append(pause)
            print(f"kill {k}: n{w} killed, writes resumed after {pause:.2f} s", flush=True)
            start(w)
            B.wait_ready(ports[w], nodes[w], time.monotonic())
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join()

        # Every acknowledged id, read back through a fresh query node with strong reads.
        qport = B.free_port()
        q = subprocess.Popen([a.binary, "serve", "--storage", url, "--cache-dir", f"{work}/cacheq", "--port", str(qport), "--role", "query"],
                             env=env, stdout=log, stderr=log)
        procs.append(q)
        B.wait_ready(qport, q, time.monotonic())
        present = set()
        every = sorted(acked | failed_ids)
        for s in range(0, len(every), 1000):
            st, o = request(qport, "POST", "/v1/collections/c/get", {"ids": every[s:s + 1000]}, timeout=60)
            assert st == 200, o
            present.update(d["id"] for d in o["documents"])
        out = {
            "kills": len(pauses), "takeover_after_s": a.takeover_after,
            "pause_p50_s": statistics.median(pauses) if pauses else None, "pause_max_s": max(pauses) if pauses else None,
            "pauses_s": [round(x, 3) for x in pauses],
            "acknowledged": len(acked), "present": len(present & acked), "lost": len(acked - present),
            "unacknowledged_but_present": len((failed_ids - acked) & present), "statuses": statuses,
        }
        print(json.dumps(out), flush=True)
        if a.json:
            json.dump(out, open(a.json, "w"), indent=1)
        if out["lost"]:
            sys.exit(1)
    finally:
        for pr in procs + list(locals().get("nodes", {}).values()):
            try:
                pr.send_signal(signal.SIGTERM)
                pr.wait(timeout=20)
            except Exception:
                pr.kill()
        subprocess.run([os.path.join(ROOT, "scripts/seaweedfs.sh"), "stop", work + "/s3"])


if __name__ == "__main__":
    main()
