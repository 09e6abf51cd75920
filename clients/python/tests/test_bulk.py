"""Bulk upserts through the client: any size, any input type, split, parallel, retried."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tidepool_client import BadRequestError, Client, PayloadTooLargeError
from tidepool_client._transport import Call

from conftest import KEY, Server


def test_numpy_float64_in_parallel_chunks_with_progress_and_duplicates(client):
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((5000, 24))  # float64: sent as float32
    ids = np.arange(5000, dtype=np.int64)
    attrs = [{"n": np.int64(i), "w": np.float32(i / 2), "even": np.bool_(i % 2 == 0), "tags": np.array(["a", "b"])}
             for i in range(5000)]
    seen = []
    coll = client.create_collection("bulk", dimension=24, metric="l2")
    assert coll.upsert(ids, vecs, attrs, batch_size=300, parallel=3, progress=lambda d, t: seen.append((d, t))) == 5000
    assert seen[-1] == (5000, 5000) and len(seen) == 17
    assert coll.count == 5000
    got = coll.get([0, 4999, 2500])
    assert [d.id for d in got] == [0, 4999, 2500]
    assert got[1].vector.dtype == np.float32 and np.array_equal(got[1].vector, vecs[4999].astype(np.float32))
    assert got[2].attributes == {"n": 2500, "w": 1250.0, "even": True, "tags": ["a", "b"]}
    # An id given twice keeps its last occurrence, whichever chunk lands first.
    twice = np.stack([vecs[0] + 1, vecs[1] + 2])
    assert coll.upsert([7, 7], twice, [{"v": 1}, {"v": 2}], batch_size=1, parallel=2) == 1
    again = coll.get([7])[0]
    assert again.attributes == {"v": 2} and np.array_equal(again.vector, twice[1].astype(np.float32))


def test_pandas_and_arrow_tables(client):
    rng = np.random.default_rng(4)
    vecs = rng.standard_normal((600, 8)).astype(np.float32)
    df = pd.DataFrame({"id": [f"doc-{i}" for i in range(300)], "vector": list(vecs[:300]),
                       "price": [float(i) if i % 3 else np.nan for i in range(300)], "name": [f"n{i}" for i in range(300)]})
    coll = client.create_collection("tables", dimension=8, metric="l2")
    assert coll.upsert(df) == 300
    got = coll.get(["doc-3", "doc-4"])
    assert got[0].attributes == {"name": "n3"}  # NaN: the attribute is left out
    assert got[1].attributes == {"name": "n4", "price": 4.0}
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(vecs[300:].reshape(-1)), 8)
    table = pa.table({"key": pa.array(range(1000, 1300), pa.int64()), "emb": vectors, "year": [2020 + i % 5 for i in range(300)]})
    assert coll.upsert(data=table, id_column="key", vector_column="emb", batch_size=64) == 300
    doc = coll.get([1007])[0]
    assert doc.attributes == {"year": 2022} and np.array_equal(doc.vector, vecs[307])
    records = [{"id": 5000 + i, "vector": vecs[i].tolist(), "attributes": {"k": i}} for i in range(10)]
    assert coll.upsert(records) == 10
    assert coll.count == 610
    with pytest.raises(ValueError, match="no column 'vector'"):
        coll.upsert(pd.DataFrame({"id": [1]}))
    with pytest.raises(ValueError, match="differ in length"):
        coll.upsert([1, 2], vecs[:3])


def test_too_large_requests_are_split_and_overload_is_retried():
    # A server that takes 64 KiB bodies and two requests in flight: chunks of 1 MiB get 413 and are
    # halved until they fit; eight parallel senders get 429 `overloaded` and retry after Retry-After.
    server = Server("--max-body-bytes", "65536", "--max-in-flight", "2")
    try:
        with Client(server.url, api_key=KEY, backoff=0.01) as c:
            coll = c.create_collection("small", dimension=32, metric="l2")
            vecs = np.random.default_rng(5).standard_normal((4000, 32)).astype(np.float32)
            assert coll.upsert(np.arange(4000), vecs, batch_size=4000, max_bytes=1 << 20, parallel=8) == 4000
            assert coll.count == 4000
            hits = coll.query(vecs[123], k=1)
            assert hits[0].id == 123
            # One document larger than the limit cannot be split: the server's error, as raised.
            with pytest.raises(PayloadTooLargeError) as e:
                coll.upsert([1], [np.zeros(32)], [{"blob": "x" * 70000}])
            assert e.value.status == 413 and e.value.code == "body_too_large"
    finally:
        server.stop()


def test_documents_without_vectors(client):
    rng = np.random.default_rng(6)
    vecs = rng.standard_normal((100, 8)).astype(np.float32)
    coll = client.create_collection("gaps", dimension=8, metric="cosine", text_fields=["body"])
    # None in a list of vectors; a DataFrame column with missing vectors; ids with no vectors at all.
    mixed = [None if i % 4 == 0 else vecs[i] for i in range(100)]
    attrs = [{"body": f"row {i}", "quarter": i % 4 == 0} for i in range(100)]
    assert coll.upsert(list(range(100)), mixed, attrs) == 100
    assert coll.upsert(pd.DataFrame({"id": [200, 201], "vector": [None, vecs[1]], "body": ["x", "y"]})) == 2
    assert coll.upsert([300, 301], attributes=[{"body": "only text"}, {"body": "more text"}]) == 2
    assert coll.count == 104
    hits = coll.query(vecs[0], k=104)
    assert len(hits) == 76 and not {0, 200, 300, 301} & set(hits.ids)
    docs = coll.get([0, 1, 300])
    assert docs[0].vector is None and docs[2].vector is None and np.allclose(np.linalg.norm(docs[1].vector), 1)
    assert sorted(d.id for d in coll.scan(filter={"quarter": True})) == list(range(0, 100, 4))
    assert 300 in coll.query(text="only", k=5).ids
    with pytest.raises(BadRequestError, match="empty vector"):  # an empty list is a mistake, not "no vector"
        client._run(Call("POST", "/v1/collections/gaps/upsert", {"documents": [{"id": 9, "vector": []}]}))


def test_metadata_as_loaders_produce_it(client):
    coll = client.create_collection("loaders", dimension=2, metric="l2")
    rows = [
        {"page": np.int64(1), "sizes": [1, 2], "meta": {"source": "a.pdf", "coords": {"x": 0.5}}, "first": None},
        {"page": 2.5, "sizes": [1.5], "meta": {"source": "b.pdf", "coords": {"x": np.float32(2.0)}}, "first": "now"},
        {"page": 3, "sizes": [], "meta": {"source": "a.pdf"}},
    ]
    assert coll.upsert([1, 2, 3], np.eye(3, 2), rows) == 3
    docs = {d.id: d.attributes for d in coll.get([1, 2, 3], include_vectors=False)}
    assert docs[1] == {"page": 1.0, "sizes": [1.0, 2.0], "meta": {"source": "a.pdf", "coords": {"x": 0.5}}, "first": None}
    assert isinstance(docs[1]["page"], float) or docs[1]["page"] == 1  # a float attribute (JSON may print 1.0 as 1)
    assert docs[2]["first"] == "now" and docs[3]["sizes"] == []
    assert sorted(d.id for d in coll.scan(filter={"meta.source": "a.pdf"})) == [1, 3]
    assert [d.id for d in coll.scan(filter={"meta.coords.x": {"gt": 1}})] == [2]
    assert sorted(d.id for d in coll.scan(filter={"sizes": 1})) == [1]
    assert sorted(d.id for d in coll.scan(filter={"page": {"gte": 2}})) == [2, 3]
    with pytest.raises(BadRequestError, match="strings or numbers"):
        coll.upsert([4], [[0, 0]], [{"mixed": [1, "a"]}])
    with pytest.raises(BadRequestError, match="dotted path"):
        list(coll.scan(filter={"meta": "a.pdf"}))


def test_first_writes_create_the_collection_in_parallel(client):
    vecs = np.random.default_rng(8).standard_normal((5000, 8)).astype(np.float32)
    # Many chunks at once, each asking to create: one creates, the others use it.
    coll = client.collection("created-in-parallel")
    vectors = [None] + list(vecs[1:])  # and the first document has no vector
    assert coll.upsert(np.arange(5000), vectors, batch_size=250, parallel=8, create={"metric": "l2"}) == 5000
    assert coll.count == 5000 and coll.describe()["dimension"] == 8
    docs = coll.get([0, 1])
    table = docs.to_arrow()
    assert table.column("vector").to_pylist()[0] is None and np.array_equal(table.column("vector").to_pylist()[1], vecs[1])
    with pytest.raises(BadRequestError, match="needs a document with a vector"):
        client.collection("never").upsert([1], None, [{"a": 1}], create={"metric": "l2"})


def test_racing_creates_from_several_clients(server):
    # Eight writers at once, each the first to write into a new collection: one creates it, none fails.
    import threading

    import httpx

    errors = []

    def writer(w):
        try:
            body = {"create": {"metric": "l2"}, "documents": [{"id": w * 100 + i, "vector": [w, i]} for i in range(100)]}
            r = httpx.post(f"http://127.0.0.1:{server}/v1/collections/raced/upsert", json=body,
                           headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
            if r.status_code != 200:
                errors.append(r.text)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Client(f"http://127.0.0.1:{server}", api_key=KEY) as c:
        assert c.collection("raced").count == 800
