"""The components of a cluster fault drill, started and stopped by PID: SeaweedFS (a real
S3-compatible store, scripts/seaweedfs.sh), the latency and fault proxy in front of it
(scripts/s3_latency_proxy.py), N `tidepool serve --peers` nodes, and HAProxy with the shipped
deploy/haproxy.cfg in front of the nodes. Used by scripts/cluster_drill.py.
"""
import http.client, json, os, shutil, signal, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "cluster-drill-key-1"
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, timeout=10):
    """(status, body as an object, response headers); raises OSError (socket.timeout too)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, json.dumps(body) if body is not None else None, headers=HEADERS)
        r = c.getresponse()
        data = r.read()
        obj = json.loads(data) if data[:1] == b"{" else {}
        return r.status, obj, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


class Cluster:
    def __init__(self, binary, work, nodes=3, takeover_after=3.0, proxy_faults=(), get_ms=60, put_ms=100, log=None):
        self.binary, self.work, self.n, self.takeover_after = binary, work, nodes, takeover_after
        self.proxy_faults, self.get_ms, self.put_ms = list(proxy_faults), get_ms, put_ms
        self.log = log or open(os.path.join(work, "log"), "a")
        self.procs, self.nodes, self.extra = [], {}, []
        self.env = dict(os.environ)

    # The store and the proxy.
    def start(self):
        out = subprocess.run([os.path.join(ROOT, "scripts/seaweedfs.sh"), "start", self.work + "/s3"], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, v = line.replace("export ", "").split("=", 1)
            self.env[k] = v
        self.proxy_port = free_port()
        self.proxy = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "scripts/s3_latency_proxy.py"), "--listen", str(self.proxy_port), "--upstream",
             self.env["TIDEPOOL_TEST_S3_ENDPOINT"].replace("http://", ""), "--get-ms", str(self.get_ms), "--put-ms", str(self.put_ms),
             "--faults-off", "--stats", self.work + "/proxy-stats.json"] + self.proxy_faults,
            stdout=self.log, stderr=self.log, start_new_session=True)
        time.sleep(0.5)
        self.env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{self.proxy_port}"
        self.env["TIDEPOOL_API_KEYS"] = f"{KEY}:rw"
        bucket = self.env.get("TIDEPOOL_TEST_S3_BUCKET", "tidepool-test")
        self.url = f"s3://{bucket}/drill-{os.getpid()}-{int(time.time())}"
        self.ports = [free_port() for _ in range(self.n)]
        self.peers = ",".join(self.node_url(i) for i in range(self.n))
        for i in range(self.n):
            self.start_node(i)
        self.front = free_port()
        self.start_haproxy()
        for i in range(self.n):
            self.wait_ready(self.ports[i])
        self.wait_ready(self.front)  # HAProxy has seen a node pass its checks
        return self

    def node_url(self, i):
        return f"http://127.0.0.1:{self.ports[i]}"

    def serve(self, port, args, cache, user=None):
        """`tidepool serve` on `port`; as `user` (a partition drill tells processes apart by user)."""
        os.makedirs(cache, exist_ok=True)
        os.chmod(cache, 0o777)
        command = [self.binary, "serve", "--storage", self.url, "--cache-dir", cache, "--port", str(port)] + args
        if user:
            command = ["runuser", "-u", user, "--"] + command
        return subprocess.Popen(command, env=self.env, stdout=self.log, stderr=self.log)

    def start_node(self, i):
        self.nodes[i] = self.serve(self.ports[i], [
            "--advertise-url", self.node_url(i), "--peers", self.peers, "--takeover-after", str(self.takeover_after),
            "--node-name", f"n{i}", "--shutdown-delay", "1"], f"{self.work}/cache{i}", self.node_user)

    node_user = None  # the user the cluster's nodes run as (None: this process's)

    def start_extra(self, args, name, user=None, port=None):
        """Another node (a split-brain owner, a fresh reader): its port and process."""
        port = port or free_port()
        p = self.serve(port, args + ["--node-name", name], f"{self.work}/cache-{name}-{port}", user)
        self.extra.append(p)
        self.wait_ready(port)
        return port, p

    # A partition between processes of two users, both still reaching the store and HAProxy and
    # reached by the clients (iptables, owner match; needs root).
    def partition(self, user_a, ports_a, user_b, ports_b):
        self.rules = getattr(self, "rules", [])
        for user, ports in ((user_a, ports_b), (user_b, ports_a)):
            for port in ports:
                rule = ["OUTPUT", "-p", "tcp", "--dport", str(port), "-m", "owner", "--uid-owner", user,
                        "-j", "REJECT", "--reject-with", "tcp-reset"]
                subprocess.run(["iptables", "-A"] + rule, check=True)
                self.rules.append(rule)

    def heal(self):
        for rule in getattr(self, "rules", []):
            subprocess.run(["iptables", "-D"] + rule)
        self.rules = []

    def fresh_reader(self):
        """A node that never owns writes and has an empty cache, for reading every id back."""
        return self.start_extra(["--role", "query", "--peers", self.peers], "reader")[0]

    def wait_ready(self, port, within=60):
        until = time.monotonic() + within
        while time.monotonic() < until:
            try:
                if request(port, "GET", "/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the node on port {port} did not become ready")

    def signal_node(self, i, sig):
        self.nodes[i].send_signal(sig)

    def kill_node(self, i):
        self.nodes[i].send_signal(signal.SIGKILL)
        self.nodes[i].wait()

    def stop_node(self, i):
        self.nodes[i].send_signal(signal.SIGTERM)
        self.nodes[i].wait(timeout=60)

    def restart_node(self, i):
        self.start_node(i)
        self.wait_ready(self.ports[i])

    def writer_of(self, collection):
        """The node (index) that vouches for the collection's head, or None."""
        for i in range(self.n):
            try:
                if request(self.ports[i], "GET", f"/v1/collections/{collection}/head", timeout=2)[0] == 200:
                    return i
            except OSError:
                pass
        return None

    def start_haproxy(self):
        cfg = []
        for line in open(os.path.join(ROOT, "deploy/haproxy.cfg")):
            t = line.strip()
            if t.startswith("bind "):
                cfg.append(f"    bind 127.0.0.1:{self.front}\n")
            elif t.startswith("server "):
                if not any(c.strip().startswith("server n0 ") for c in cfg):
                    cfg += [f"    server n{i} 127.0.0.1:{self.ports[i]} check\n" for i in range(self.n)]
            elif t.startswith("errorfile "):
                # The error pages live beside the shipped file.
                code, path = t.split()[1:3]
                cfg.append(f"    errorfile {code} {os.path.join(ROOT, 'deploy', path)}\n")
            else:
                cfg.append(line)
        open(f"{self.work}/haproxy.cfg", "w").writelines(cfg)
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.procs.append(subprocess.Popen([binary, "-f", f"{self.work}/haproxy.cfg", "-db"], stdout=self.log, stderr=self.log))

    # Faults of the store.
    def toggle_store_faults(self):
        self.proxy.send_signal(signal.SIGUSR2)

    def proxy_stats(self):
        self.proxy.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        try:
            return json.load(open(self.work + "/proxy-stats.json"))
        except (OSError, ValueError):
            return {}

    def kill_store(self):
        subprocess.run([os.path.join(ROOT, "scripts/seaweedfs.sh"), "kill", self.work + "/s3"], check=True, capture_output=True)

    def restart_store(self):
        subprocess.run([os.path.join(ROOT, "scripts/seaweedfs.sh"), "start", self.work + "/s3"], check=True, capture_output=True)

    def close(self):
        self.heal()
        for p in self.extra + list(self.nodes.values()) + self.procs + [getattr(self, "proxy", None)]:
            if p is None or p.poll() is not None:
                continue
            try:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
            except Exception:
                p.kill()
        subprocess.run([os.path.join(ROOT, "scripts/seaweedfs.sh"), "stop", self.work + "/s3"], capture_output=True)
