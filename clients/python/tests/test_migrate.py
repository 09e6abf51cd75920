"""Migration from Chroma, LanceDB and Qdrant (local mode), each through its own client, 10,000
documents checked field by field: into a running server (resumable) and into a data directory
with `tidepool migrate`."""
import json
import os
import subprocess
import tempfile
import uuid

import numpy as np
import pyarrow as pa
import pytest

import tidepool_client.client as client_module
from tidepool_client import Client
from tidepool_client.migrate import main as migrate

from conftest import KEY

N, DIM = 10_000, 16
CLIENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _data(seed):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((N, DIM)).astype(np.float32)
    meta = [{"n": i, "w": i / 4, "even": i % 2 == 0, "lang": ["en", "de", "fr"][i % 3]} for i in range(N)]
    return vecs, meta


def _chroma(path):
    import chromadb

    vecs, meta = _data(1)
    coll = chromadb.PersistentClient(path=path).create_collection("docs", embedding_function=None)
    ids = [f"c{i}" for i in range(N)]
    texts = [f"document number {i}" for i in range(N)]
    for s in range(0, N, 2500):
        coll.add(ids=ids[s:s + 2500], embeddings=vecs[s:s + 2500], metadatas=meta[s:s + 2500], documents=texts[s:s + 2500])
    return {ids[i]: (vecs[i], dict(meta[i], text=texts[i])) for i in range(N)}


def _qdrant(path):
    from qdrant_client import QdrantClient
    from qdrant_client.models import Distance, PointStruct, VectorParams

    vecs, meta = _data(2)
    client = QdrantClient(path=path)
    client.create_collection("docs", vectors_config=VectorParams(size=DIM, distance=Distance.EUCLID))
    ids = [i if i % 2 else str(uuid.UUID(int=i + 1)) for i in range(N)]  # integer and UUID ids
    for s in range(0, N, 1000):
        client.upsert("docs", [PointStruct(id=ids[i], vector=vecs[i].tolist(), payload=meta[i]) for i in range(s, s + 1000)])
    client.close()
    return {ids[i]: (vecs[i], meta[i]) for i in range(N)}


def _lancedb(path):
    import lancedb

    vecs, meta = _data(3)
    table = pa.table({"id": pa.array(range(N), pa.int64()),
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), DIM),
                      "n": [m["n"] for m in meta], "w": [m["w"] for m in meta], "even": [m["even"] for m in meta],
                      "lang": [m["lang"] for m in meta]})
    lancedb.connect(path).create_table("docs", data=table)
    return {i: (vecs[i], meta[i]) for i in range(N)}


SOURCES = {"chroma": _chroma, "qdrant": _qdrant, "lancedb": _lancedb}


def _check(docs_by_id, expected):
    assert len(docs_by_id) == len(expected)
    for doc_id, (vec, attrs) in expected.items():
        d = docs_by_id[doc_id]
        assert np.array_equal(np.asarray(d.vector, np.float32), vec), doc_id
        assert d.attributes == attrs, doc_id


@pytest.mark.parametrize("source", ["chroma", "qdrant", "lancedb"])
def test_into_a_server_resumably(source, server, monkeypatch):
    work = tempfile.mkdtemp(prefix=f"tidepool-migrate-{source}-")
    expected = SOURCES[source](os.path.join(work, "src"))
    state = os.path.join(work, "state.json")
    url = f"http://127.0.0.1:{server}"
    args = ["--from", source, "--path", os.path.join(work, "src"), "--collection", "docs", "--url", url, "--api-key", KEY,
            "--to-collection", f"from-{source}", "--metric", "l2", "--state", state, "--batch", "1000"]
    # The first run fails after three batches were acknowledged...
    original, calls = client_module.Collection.upsert, []

    def failing(self, *a, **kw):
        calls.append(len(a[0]))
        if len(calls) == 4:
            raise ConnectionError("the network went away")
        return original(self, *a, **kw)

    monkeypatch.setattr(client_module.Collection, "upsert", failing)
    with pytest.raises(ConnectionError):
        migrate(args)
    assert json.load(open(state))["done"] == 3000
    # ...and the rerun goes on from there, sending only the rest.
    calls.clear()
    monkeypatch.setattr(client_module.Collection, "upsert", lambda self, *a, **kw: calls.append(len(a[0])) or original(self, *a, **kw))
    assert migrate(args) == 0
    assert sum(calls) == N - 3000
    with Client(url, api_key=KEY) as c:
        coll = c.collection(f"from-{source}")
        assert coll.count == N
        docs = {}
        for d in coll.scan(include_vectors=True, page_size=5000):
            docs[d.id] = d
    _check(docs, expected)


def test_tidepool_migrate_into_a_data_directory(server):
    work = tempfile.mkdtemp(prefix="tidepool-migrate-cli-")
    expected = _chroma(os.path.join(work, "src"))
    data = os.path.join(work, "db")
    env = dict(os.environ, PYTHONPATH=CLIENT)
    r = subprocess.run([os.environ["TIDEPOOL_BIN"], "migrate", "--data", data, "--from", "chroma", "--source-path",
                        os.path.join(work, "src"), "--source-collection", "docs", "--collection", "moved", "--metric", "l2"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"committed {N}"
    out = os.path.join(work, "moved.jsonl")
    r = subprocess.run([os.environ["TIDEPOOL_BIN"], "export", "--data", data, "--collection", "moved", "--to", out],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    class Doc:
        def __init__(self, o):
            self.vector, self.attributes = o.get("vector"), o.get("attributes", {})

    docs = {o["id"]: Doc(o) for o in map(json.loads, open(out))}
    _check(docs, expected)
