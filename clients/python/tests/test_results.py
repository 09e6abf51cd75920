"""Typed hits and documents, numpy vectors, tables, and the shapes of queries that must just work."""
import numpy as np
import pandas as pd
import pyarrow as pa

from tidepool_client import Document, Hit, Hits


def test_typed_hits_vectors_and_tables(client):
    rng = np.random.default_rng(8)
    vecs = rng.standard_normal((200, 12)).astype(np.float32)
    coll = client.create_collection("typed", dimension=12, metric="l2", text_fields=["body"])
    coll.upsert(np.arange(200), vecs, [{"body": f"word{i % 7}", "rank": i} for i in range(200)])
    hits = coll.query(vecs[5], k=3, include=["attributes", "vectors"])
    assert isinstance(hits, Hits) and isinstance(hits[0], Hit)
    assert hits[0].id == 5 and abs(hits[0].distance) < 1e-5 and hits[0].attributes["rank"] == 5
    assert hits[0].vector.dtype == np.float32 and np.array_equal(hits[0].vector, vecs[5])  # exact, via base64
    assert hits[0]["id"] == 5 and hits[0].get("score") is None and hits.ids[0] == 5
    # A (1, D) query, a float64 query and a list query answer alike.
    for q in (vecs[5:6], vecs[5].astype(np.float64), vecs[5].tolist()):
        assert coll.query(q, k=1)[0].id == 5
    frame = hits.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame["id"]) == hits.ids
    assert {"distance", "rank", "body", "vector"} <= set(frame.columns)
    table = hits.to_arrow()
    assert isinstance(table, pa.Table) and table.num_rows == 3
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 12)
    assert np.array_equal(np.asarray(table.column("vector")[0].as_py(), dtype=np.float32), vecs[5])
    text = coll.query(text="word3", k=50)
    assert len(text) == 29 and all(h.score is not None and h.distance is None for h in text)
    batch = coll.query(vectors=vecs[:5], k=2)
    assert [b[0].id for b in batch] == [0, 1, 2, 3, 4]
    docs = coll.get([9, 10, 404])
    assert [d.id for d in docs] == [9, 10] and isinstance(docs[0], Document)
    assert np.array_equal(docs.to_pandas()["vector"][0], vecs[9])
    scanned = list(coll.scan(filter={"rank": {"lt": 30}}, page_size=7, include_vectors=True))
    assert [d.id for d in scanned] == list(range(30)) and np.array_equal(scanned[29].vector, vecs[29])
    # Filters may hold numpy scalars.
    assert len(coll.query(vecs[0], k=100, filter={"rank": {"gte": np.int64(190)}})) == 10


def test_count_and_facets(client):
    coll = client.create_collection("facets", dimension=2, metric="l2")
    langs = ["en", "de", "en", "fr", "en", "de"]
    coll.upsert(list(range(6)), np.eye(6, 2), [{"lang": l, "n": i, "meta": {"src": f"s{i % 2}"}} for i, l in enumerate(langs)])
    assert coll.count_matching() == 6 and coll.count_matching({"lang": "en"}) == 3
    assert coll.facets("lang") == [{"value": "en", "count": 3}, {"value": "de", "count": 2}, {"value": "fr", "count": 1}]
    # fr, en, de once each: ties in value order.
    assert coll.facets("lang", filter={"n": {"gte": 3}}, limit=2) == [{"value": "de", "count": 1}, {"value": "en", "count": 1}]
    assert coll.facets("meta.src") == [{"value": "s0", "count": 3}, {"value": "s1", "count": 3}]
