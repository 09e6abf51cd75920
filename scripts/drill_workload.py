"""The load of a cluster fault drill and its ledger: clients write through HAProxy (upserts of
new ids, deletes of ids they upserted before) and read, recording every operation with its
outcome; the check afterwards reads every id back through a node with an empty cache, with
strong reads. Used by scripts/cluster_drill.py.
"""
import random, threading, time
from drill_cluster import request

CLIENT_TIMEOUT = 40  # seconds: past the server's 30 s request limit, a request "hangs"


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.upserted = {}         # id -> collection, acknowledged
        self.deleted = set()       # ids whose delete was acknowledged
        self.unknown = set()       # ids of upserts or deletes not acknowledged (outcome unknown)
        self.statuses = {}
        self.hangs = 0
        self.acks = []             # (acknowledged, collection, answering node, forwarded to, sent), writes
        self.reads = 0

    def status(self, s):
        self.statuses[str(s)] = self.statuses.get(str(s), 0) + 1

    def first_ack_sent_after(self, collection, since):
        """When the first write of `collection` sent after `since` was acknowledged (None: none yet)."""
        with self.lock:
            return min((t for t, c, _, _, sent in self.acks if c == collection and sent > since), default=None)


class Workload:
    """Writer and reader threads through `port` (HAProxy); collection `busy` takes most writes."""

    def __init__(self, port, collections, busy, ledger, writers=3, readers=1, seed=1):
        self.port, self.collections, self.busy, self.ledger = port, collections, busy, ledger
        self.stop = threading.Event()
        self.next_id = [1]
        self.rng = random.Random(seed)
        self.threads = [threading.Thread(target=self.writer, args=(k,), daemon=True) for k in range(writers)]
        self.threads += [threading.Thread(target=self.reader, daemon=True) for _ in range(readers)]
        self.extra_ports = []  # more entry points (a split brain's owners), written to directly

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def call(self, method, path, body, port=None):
        try:
            s, o, h = request(port or self.port, method, path, body, timeout=CLIENT_TIMEOUT)
        except TimeoutError:
            with self.ledger.lock:
                self.ledger.hangs += 1
                self.ledger.status("hang")
            return None, {}, {}
        except OSError:
            with self.ledger.lock:
                self.ledger.status("connection")
            return None, {}, {}
        with self.ledger.lock:
            self.ledger.status(s)
        return s, o, h

    def writer(self, k):
        rng = random.Random(k)
        mine = {c: [] for c in self.collections}
        while not self.stop.is_set():
            c = self.busy if rng.random() < 0.6 else rng.choice(self.collections)
            port = rng.choice(self.extra_ports) if self.extra_ports and rng.random() < 0.5 else None
            if rng.random() < 0.25 and len(mine[c]) >= 5:
                ids = [mine[c].pop(rng.randrange(len(mine[c]))) for _ in range(5)]
                sent = time.monotonic()
                s, _, h = self.call("POST", f"/v1/collections/{c}/delete", {"ids": ids}, port)
                with self.ledger.lock:
                    if s == 200:
                        self.ledger.deleted.update(ids)
                        self.ledger.acks.append((time.monotonic(), c, h.get("x-tidepool-node"), h.get("x-tidepool-forwarded-to"), sent))
                    else:
                        self.ledger.unknown.update(ids)
            else:
                with self.ledger.lock:
                    first = self.next_id[0]
                    self.next_id[0] += 10
                ids = list(range(first, first + 10))
                docs = [{"id": i, "vector": [float(i % 101), float(i % 7), 1.0, 2.0]} for i in ids]
                sent = time.monotonic()
                s, _, h = self.call("POST", f"/v1/collections/{c}/upsert", {"documents": docs}, port)
                with self.ledger.lock:
                    if s == 200:
                        for i in ids:
                            self.ledger.upserted[i] = c
                        self.ledger.acks.append((time.monotonic(), c, h.get("x-tidepool-node"), h.get("x-tidepool-forwarded-to"), sent))
                    else:
                        self.ledger.unknown.update(ids)
                if s == 200:
                    mine[c] += ids
            if s != 200:
                time.sleep(0.05)

    def reader(self):
        rng = random.Random(99)
        while not self.stop.is_set():
            c = rng.choice(self.collections)
            self.call("POST", f"/v1/collections/{c}/query", {"vector": [rng.random() * 100, 3.0, 1.0, 2.0], "k": 5})
            with self.ledger.lock:
                self.ledger.reads += 1
            time.sleep(0.02)


def check(port, ledger, collections):
    """Reads every id back through `port` (strong reads): acknowledged upserts not deleted must
    be there, acknowledged deletes must not; ids whose outcome is unknown may be either."""
    present = set()
    with ledger.lock:
        ids = {c: [] for c in collections}
        for i, c in ledger.upserted.items():
            ids[c].append(i)
        for i in ledger.unknown:
            for c in collections:
                ids[c].append(i)
    for c, wanted in ids.items():
        wanted = sorted(set(wanted))
        for s in range(0, len(wanted), 1000):
            st, o, _ = request(port, "POST", f"/v1/collections/{c}/get",
                               {"ids": wanted[s:s + 1000], "include_vectors": False}, timeout=120)
            if st != 200:
                raise RuntimeError(f"reading back {c}: {st} {o}")
            present.update(d["id"] for d in o["documents"])
    with ledger.lock:
        live = set(ledger.upserted) - ledger.deleted - ledger.unknown
        return {
            "acknowledged_upserts": len(ledger.upserted), "acknowledged_deletes": len(ledger.deleted),
            "present": len(live & present), "lost": sorted(live - present)[:20], "lost_count": len(live - present),
            "deleted_returned": sorted((ledger.deleted - ledger.unknown) & present)[:20],
            "deleted_returned_count": len((ledger.deleted - ledger.unknown) & present),
            "unacknowledged_but_present": len((ledger.unknown - set(ledger.upserted)) & present),
            "statuses": dict(ledger.statuses), "hangs": ledger.hangs, "reads": ledger.reads,
        }
