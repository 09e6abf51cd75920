#!/usr/bin/env python3
"""Fault drills of a Tidepool cluster: SeaweedFS behind scripts/s3_latency_proxy.py (S3-like
latency, and faults on demand), three `tidepool serve --peers` nodes and HAProxy with
deploy/haproxy.cfg, clients writing (upserts of new ids, deletes of old ones) and reading
through HAProxy, every operation recorded; after the drill every id is read back through a
node with an empty cache, with strong reads.

    python3 scripts/cluster_drill.py --binary .build/release/tidepool --drill kill|pause|split|store|store-kill|rolling[,…]|all
        [--rounds 5] [--takeover-after 3] [--seconds 20] [--json OUT]

  kill        kill -9 the writer of the busy collection, --rounds times (restarted after each)
  pause       SIGSTOP the busy collection's writer past the takeover, SIGCONT it once another
              node writes: it must acknowledge nothing itself from then on
  split       two more nodes that each believe they alone own every collection (each its own
              only peer, unreachable from the others), written to directly beside HAProxy
  store       the proxy's faults for --seconds: 503 bursts, resets mid-body, black holes, and
              writes that reach the store while their answer is lost
  store-kill  kill -9 SeaweedFS mid-load, --rounds times, and start it again on the same data
  rolling     restart the three nodes one after another (SIGTERM, start) under load, --rounds times

The gate of every drill: 0 acknowledged writes lost, 0 deleted ids returned, no request hanging
past its timeout (40 s), no 5xx but 503; for `pause`, no acknowledgement by the woken writer
itself; `tidepool verify` of the cluster (checksums, each collection's WAL sequence without a
gap, manifest generations and flushed sequence numbers that never go back) finds nothing.
Prints and writes (--json) per drill: acknowledged, present, lost, deleted returned,
unacknowledged-but-present, statuses, and the write pause after each kill (p50, max).
"""
import argparse, json, os, random, signal, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drill_cluster import ROOT, Cluster, free_port, request  # noqa: E402
from drill_workload import Workload, Ledger, check  # noqa: E402

COLLECTIONS = ["busy"] + [f"t{i}" for i in range(7)]


def pause_after(cluster, ledger, since, collection="busy", within=60):
    """Seconds from `since` until a write of `collection` sent after it was acknowledged."""
    until = time.monotonic() + within
    while time.monotonic() < until:
        t = ledger.first_ack_sent_after(collection, since)
        if t is not None:
            return t - since
        time.sleep(0.02)
    return None


def drill_kill(cluster, ledger, a, out):
    pauses = []
    for k in range(a.rounds):
        time.sleep(1 + random.random() * 2)
        w = cluster.writer_of("busy")
        if w is None:
            print(f"round {k}: no writer found", flush=True)
            continue
        t = time.monotonic()
        cluster.kill_node(w)
        p = pause_after(cluster, ledger, t)
        pauses.append(p if p is not None else float("inf"))
        print(f"round {k}: n{w} killed; writes to busy resumed after {p if p is None else round(p, 2)} s", flush=True)
        cluster.restart_node(w)
    out["pauses_s"] = [round(p, 3) for p in pauses]


def drill_pause(cluster, ledger, a, out):
    violations, pauses = [], []
    for k in range(a.rounds):
        time.sleep(1 + random.random() * 2)
        w = cluster.writer_of("busy")
        if w is None:
            continue
        t = time.monotonic()
        cluster.signal_node(w, signal.SIGSTOP)
        p = pause_after(cluster, ledger, t)
        pauses.append(p if p is not None else float("inf"))
        time.sleep(random.random() * 2)
        woke = time.monotonic()
        cluster.signal_node(w, signal.SIGCONT)
        time.sleep(3)
        with ledger.lock:
            # Acknowledged by the woken node itself: it answered without forwarding, or another
            # node forwarded the write to it.
            own = [x for x in ledger.acks if x[4] > woke and x[1] == "busy"
                   and ((x[2] == f"n{w}" and not x[3]) or x[3] == cluster.node_url(w))]
        violations += own
        print(f"round {k}: n{w} paused; another wrote after {p if p is None else round(p, 2)} s; "
              f"acknowledged by n{w} itself after waking: {len(own)}", flush=True)
    out["pauses_s"] = [round(p, 3) for p in pauses]
    out["woken_writer_acknowledgements"] = len(violations)


def drill_split(cluster, ledger, a, out, workload):
    """Two more nodes that may own collections, cut off from the cluster's three (and the three
    from them) while all reach the store: each side sees the other's writers as gone and takes
    their collections over, both sides are sent writes, and the store's fencing lets one writer
    of a collection acknowledge at a time. The partition heals after --seconds."""
    ports = [free_port() for _ in range(2)]
    peers = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    owners = []
    for k, port in enumerate(ports):
        owners.append(cluster.start_extra(
            ["--advertise-url", f"http://127.0.0.1:{port}", "--peers", peers, "--takeover-after", str(a.takeover_after)],
            f"s{k}", user="nobody", port=port)[0])
    cluster.partition(cluster.node_user, cluster.ports, "nobody", ports)
    workload.extra_ports = owners
    time.sleep(a.seconds)
    workload.extra_ports = []
    cluster.heal()
    time.sleep(a.takeover_after + 2)


def drill_store(cluster, ledger, a, out):
    cluster.toggle_store_faults()
    time.sleep(a.seconds)
    cluster.toggle_store_faults()
    out["proxy"] = cluster.proxy_stats()


def drill_store_kill(cluster, ledger, a, out):
    for k in range(a.rounds):
        time.sleep(2 + random.random() * 3)
        t = time.monotonic()
        cluster.kill_store()
        time.sleep(1 + random.random() * 3)
        cluster.restart_store()
        p = pause_after(cluster, ledger, time.monotonic())
        print(f"round {k}: the store was down {time.monotonic() - t - (p or 0):.1f} s; "
              f"writes to busy resumed {p if p is None else round(p, 2)} s after it came back", flush=True)


def drill_rolling(cluster, ledger, a, out):
    for k in range(a.rounds):
        for i in range(cluster.n):
            time.sleep(1)
            t = time.monotonic()
            cluster.stop_node(i)
            cluster.restart_node(i)
            print(f"round {k}: n{i} restarted in {time.monotonic() - t:.1f} s", flush=True)
    out["restarts"] = a.rounds * cluster.n


DRILLS = {"kill": drill_kill, "pause": drill_pause, "split": drill_split, "store": drill_store,
          "store-kill": drill_store_kill, "rolling": drill_rolling}


def run(name, a):
    work = tempfile.mkdtemp(prefix=f"tp-drill-{name}-")
    os.chmod(work, 0o755)  # nodes of the split drill run as other users
    faults = ["--slowdown-every", "9", "--lose-answer-every", "13", "--reset-every", "11", "--blackhole-every", "97",
              "--burst-every", "6", "--burst-seconds", "1"] if name == "store" else []
    cluster = Cluster(a.binary, work, takeover_after=a.takeover_after, proxy_faults=faults)
    if name == "split":
        cluster.node_user = "daemon"  # the partition tells the two sides apart by user
    out = {"drill": name}
    try:
        cluster.start()
        for c in COLLECTIONS:
            until = time.monotonic() + 60
            while request(cluster.front, "POST", "/v1/collections", {"name": c, "dimension": 4, "metric": "l2"})[0] not in (201, 409):
                if time.monotonic() > until:
                    raise RuntimeError(f"cannot create {c}")
                time.sleep(0.2)
        ledger = Ledger()
        workload = Workload(cluster.front, COLLECTIONS, "busy", ledger, writers=a.clients, seed=a.seed).start()
        time.sleep(2)
        started = time.monotonic()
        if name == "split":
            drill_split(cluster, ledger, a, out, workload)
        else:
            DRILLS[name](cluster, ledger, a, out)
        time.sleep(2)
        workload.finish()
        out["seconds"] = round(time.monotonic() - started, 1)
        # The longest stretch with no write of the busy collection acknowledged (sent and answered
        # within the drill), and how often a node took a collection over.
        with ledger.lock:
            times = sorted(t for t, c, _, _, sent in ledger.acks if c == "busy" and sent >= started)
        out["longest_write_gap_s"] = round(max((b - a_ for a_, b in zip(times, times[1:])), default=0), 3)
        out["takeovers"] = open(os.path.join(work, "log")).read().count('msg="writing collection')
        out.update(check(cluster.fresh_reader(), ledger, COLLECTIONS))
        v = subprocess.run([a.binary, "verify", "--storage", cluster.url, "--cache-dir", work + "/cache-verify"],
                           env=cluster.env, capture_output=True, text=True)
        out["verify"] = (v.stdout + v.stderr).strip().splitlines()[-5:]
        out["verify_ok"] = v.returncode == 0
        if "pauses_s" in out and out["pauses_s"]:
            out["pause_p50_s"] = round(statistics.median(out["pauses_s"]), 3)
            out["pause_max_s"] = max(out["pauses_s"])
        fivexx = {k: v for k, v in out["statuses"].items() if k.startswith("5") and k != "503"}
        out["passed"] = (out["lost_count"] == 0 and out["deleted_returned_count"] == 0 and out["hangs"] == 0 and not fivexx
                         and out["verify_ok"] and out.get("woken_writer_acknowledgements", 0) == 0)
    finally:
        cluster.close()
    print(json.dumps(out), flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binary", default=os.path.join(ROOT, ".build/release/tidepool"))
    p.add_argument("--drill", default="all", help="one of " + ", ".join(DRILLS) + ", several separated by commas, or all")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--takeover-after", type=float, default=3)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json")
    a = p.parse_args()
    random.seed(a.seed)
    chosen = list(DRILLS) if a.drill == "all" else a.drill.split(",")
    unknown = [d for d in chosen if d not in DRILLS]
    if unknown:
        p.error(f"no drill {unknown}; the drills: {', '.join(DRILLS)}")
    results = [run(d, a) for d in chosen]
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)
    failed = [r["drill"] for r in results if not r.get("passed")]
    print("drills passed" if not failed else f"drills FAILED: {failed}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
