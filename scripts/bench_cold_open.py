"""A cold query node opening an IVF-PQ collection on object storage, timed by phase.

  python3 scripts/bench_cold_open.py setup      # SeaweedFS + the 60/100 ms proxy + a writer, pypi 100k as IVF-PQ, compacted (~3 min)
  python3 scripts/bench_cold_open.py probe N    # N fresh query nodes: /ready, first query (it opens the collection), second query
  python3 scripts/bench_cold_open.py stop

State is kept in /tmp/cold_state.json between the steps; the binary is .build/release/tidepool.
"""
import os, sys, json, time, subprocess, signal, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_object_storage as B
from http_load import b64, read_vecs
import numpy as np
STATE = "/tmp/cold_state.json"
binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "release", "tidepool")
mode = sys.argv[1]
if mode == "setup":
    n = 100000
    base = read_vecs(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "datasets") + "/pypi-minilm-100k/base.fvecs", np.float32)[:n]
    work = tempfile.mkdtemp(prefix="tp-cold-"); log = open(work + "/log", "w")
    env_lines = subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), "seaweedfs.sh"), "start", work + "/s3"], check=True, capture_output=True, text=True).stdout
    env = dict(os.environ)
    for line in env_lines.splitlines():
        k, v = line.replace("export ", "").split("=", 1); env[k] = v
    pp = B.free_port()
    proxy = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "s3_latency_proxy.py"), "--listen", str(pp), "--upstream",
        env["TIDEPOOL_TEST_S3_ENDPOINT"].replace("http://", ""), "--get-ms", "60", "--put-ms", "100", "--stats", work + "/ps.json"],
        stdout=log, stderr=log, start_new_session=True)
    time.sleep(0.5)
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{pp}"; env["TIDEPOOL_API_KEYS"] = f"{B.KEY}:rw"
    wp = B.free_port()
    w, _, _ = B.serve(binary, ["--storage", "s3://tidepool-test/cold", "--cache-dir", work + "/cw"], wp, env, log)
    B.load(wp, "c", {"index": "ivf", "quantization": "pq"}, base, 8, 250); B.compact(wp, "c"); B.wait_compacted(wp, "c")
    json.dump({"work": work, "env": {k: env[k] for k in ["AWS_ENDPOINT_URL", "TIDEPOOL_API_KEYS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] if k in env},
               "wp": wp, "writer": w.pid, "proxy": proxy.pid}, open(STATE, "w"))
    print("ready", flush=True)
elif mode == "probe":
    st = json.load(open(STATE)); env = dict(os.environ); env.update(st["env"])
    queries = read_vecs(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "datasets") + "/pypi-minilm-100k/query.fvecs", np.float32)
    log = open(st["work"] + "/probe.log", "a")
    for r in range(int(sys.argv[2]) if len(sys.argv) > 2 else 2):
        cache = tempfile.mkdtemp(prefix="cq-", dir=st["work"])
        qp = B.free_port()
        q, ready, t0 = B.serve(binary, ["--storage", "s3://tidepool-test/cold", "--cache-dir", cache, "--read-only"], qp, env, open(st["work"] + "/probe-stderr.log", "w"))
        c = B.Client(qp)
        # As the benchmark does: the first query opens the collection.
        t2 = time.monotonic()
        s, o = c.call("POST", "/v1/collections/c/query", {"vector_b64": b64(queries[0]), "k": 10}); t3 = time.monotonic()
        assert s == 200, o
        s, o = c.call("POST", "/v1/collections/c/query", {"vector_b64": b64(queries[1]), "k": 10}); t4 = time.monotonic()
        print(f"ready {ready:.3f}  open+q1 {t3-t2:.3f}  q2 {t4-t3:.3f}  total-to-q1 {t3-t0:.3f}", flush=True)
        q.send_signal(signal.SIGTERM); q.wait()
elif mode == "stop":
    st = json.load(open(STATE))
    for pid in [st["writer"], st["proxy"]]:
        try: os.kill(pid, signal.SIGTERM)
        except Exception: pass
    subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), "seaweedfs.sh"), "stop", st["work"] + "/s3"])
