"""The Python client against a real `tidepool serve` (built by `swift build`)."""
import datetime

import numpy as np
import pytest

from tidepool_client import Client, TidepoolError

from conftest import KEY, READ_ONLY_KEY


def test_round_trip_with_numpy(server):
    client = Client(f"http://127.0.0.1:{server}", api_key=KEY)
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((300, 16)).astype(np.float32)
    docs = client.create_collection("np", dimension=16, metric="l2", text_fields=["body"])
    attrs = [{"body": f"item {i} {'even' if i % 2 == 0 else 'odd'}", "n": i} for i in range(300)]
    assert docs.upsert(ids=list(range(300)), vectors=vecs, attributes=attrs) == 300
    assert docs.count == 300
    hits = docs.query(vecs[42], k=5, include=["attributes"])
    assert hits[0]["id"] == 42
    assert hits[0]["distance"] == pytest.approx(0, abs=1e-4)
    assert hits[0]["attributes"]["n"] == 42
    exact = np.argsort(((vecs - vecs[7]) ** 2).sum(axis=1))[:10]
    got = [h["id"] for h in docs.query(vecs[7], k=10, exact=True)]
    assert got == list(exact)
    assert client.server_version().count(".") == 2
    batch = docs.query(vectors=vecs[:3], k=1)  # sent as vectors_b64
    assert [b[0]["id"] for b in batch] == [0, 1, 2]
    filtered = docs.query(vecs[7], k=10, filter={"n": {"gte": 100}})
    assert all(h["id"] >= 100 for h in filtered) and len(filtered) == 10
    text = docs.query(text="even", k=400)
    assert len(text) == 150
    hybrid = docs.query(vecs[8], text="even", k=3)
    assert hybrid[0]["id"] == 8 and hybrid[0]["text_rank"] is not None
    got = docs.get([1, 2])
    assert np.allclose(got[0]["vector"], vecs[1])
    assert sum(1 for _ in docs.scan(page_size=64)) == 300
    assert sum(1 for _ in docs.scan(filter={"n": {"lt": 10}})) == 10
    assert docs.delete(filter={"n": {"lt": 10}}) == 10
    assert docs.delete(ids=[10, 11, 9999]) == 2
    assert docs.count == 288
    assert docs.update_settings(quantization="sq8", ef_search=96)["config"]["quantization"] == "sq8"
    assert docs.query(vecs[42], k=1, rerank=32)[0]["id"] == 42
    client.delete_collection("np")
    assert "np" not in [c["name"] for c in client.list_collections()]


def test_errors(server):
    client = Client(f"http://127.0.0.1:{server}", api_key=KEY)
    docs = client.create_collection("err", dimension=3)
    with pytest.raises(TidepoolError) as e:
        docs.upsert(ids=[1], vectors=[[1.0, 2.0]])
    assert e.value.status == 400 and e.value.code == "dimension_mismatch"
    with pytest.raises(TidepoolError) as e:
        client.collection("missing").query([1, 2, 3])
    assert e.value.status == 404
    with pytest.raises(TidepoolError) as e:
        client.create_collection("err", dimension=3)
    assert e.value.status == 409
    with pytest.raises(TidepoolError) as e:
        Client(f"http://127.0.0.1:{server}", api_key=READ_ONLY_KEY).collection("err").upsert([1], [[1, 2, 3]])
    assert e.value.status == 403
    with pytest.raises(TidepoolError) as e:
        Client(f"http://127.0.0.1:{server}").list_collections()
    assert e.value.status == 401
    assert docs.upsert(ids=["a"], vectors=[[1, 2, 3]]) == 1
    created = client.collection("auto").upsert(ids=[5], vectors=[[0.5, 0.5]], create={"metric": "ip"})
    assert created == 1 and client.collection("auto").describe()["metric"] == "innerProduct"


def test_versions_snapshots_restore_and_branches(server):
    client = Client(f"http://127.0.0.1:{server}", api_key=KEY)
    rng = np.random.default_rng(11)
    vecs = rng.standard_normal((100, 8)).astype(np.float32)
    docs = client.create_collection("ver", dimension=8, metric="l2")
    docs.upsert(ids=list(range(100)), vectors=vecs)
    snap = docs.create_snapshot("start")  # flushes: version 1 holds all 100
    assert snap["name"] == "start" and snap["version"] == 1
    docs.delete(ids=list(range(10)))  # few: no compaction, one version
    docs.create_snapshot("half")
    listed = docs.versions()
    assert listed["version"] == 2
    assert [v["documents"] for v in listed["versions"]] == [100, 90]
    assert [s["name"] for s in docs.snapshots()] == ["start", "half"]
    # Reads as of version 1 see what was deleted since.
    assert docs.query(vecs[3], k=1, as_of=1)[0]["id"] == 3
    assert docs.query(vecs[3], k=1)[0]["id"] != 3
    assert len(docs.get([3], as_of=1)) == 1
    assert sum(1 for _ in docs.scan(page_size=30, as_of=1)) == 100
    when = datetime.datetime.fromisoformat(listed["versions"][0]["time"].replace("Z", "+00:00"))
    assert docs.query(vecs[3], k=1, as_of=when)[0]["id"] == 3
    with pytest.raises(TidepoolError) as e:
        docs.query(vecs[3], k=1, as_of=99)
    assert e.value.status == 404 and e.value.code == "not_found"
    # A branch of version 1, then the source restored to it.
    exp = docs.branch("ver-exp", version=1)
    assert exp.count == 100
    exp.delete(ids=[99])
    assert docs.restore(version=1) == 3
    assert docs.count == 100 and exp.count == 99
    docs.delete_snapshot("half")
    with pytest.raises(TidepoolError) as e:
        docs.delete_snapshot("half")
    assert e.value.status == 404
    with pytest.raises(ValueError):
        docs.restore()
    # Point in time: back to right after a logged operation, between versions.
    point = docs.describe()["last_seq"]
    docs.delete(ids=[1, 2, 3])
    docs.upsert(ids=[500], vectors=vecs[:1])
    assert docs.count == 98
    docs.restore(sequence=point)
    assert docs.count == 100 and len(docs.get([500])) == 0
