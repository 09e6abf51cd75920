"""`tidepool import` of Parquet and HDF5 and `tidepool export` to Parquet, which go through
`python -m tidepool_client.convert`, checked field by field through the real CLI."""
import base64
import json
import os
import subprocess
import tempfile

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CLIENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tidepool(*args):
    env = dict(os.environ, PYTHONPATH=CLIENT)
    return subprocess.run([os.environ["TIDEPOOL_BIN"], *args], env=env, capture_output=True, text=True, timeout=300)


def exported(data, collection):
    out = os.path.join(data, "..", f"{collection}-export.jsonl")
    r = tidepool("export", "--data", data, "--collection", collection, "--to", out)
    assert r.returncode == 0, r.stderr
    docs = {}
    for line in open(out):
        d = json.loads(line)
        docs[d["id"]] = d
    return docs


def test_parquet_in_and_out():
    work = tempfile.mkdtemp(prefix="tidepool-pq-")
    data = os.path.join(work, "db")
    rng = np.random.default_rng(4)
    vecs = rng.standard_normal((500, 6)).astype(np.float32)
    vector = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), 6)
    table = pa.table({"key": pa.array([f"k{i}" for i in range(500)]), "emb": vector,
                      "year": pa.array([2000 + i % 20 if i % 7 else None for i in range(500)], pa.int64()),
                      "title": [f"title {i}" for i in range(500)], "tags": [["a", "b"] if i % 2 else [] for i in range(500)]})
    src = os.path.join(work, "in.parquet")
    pq.write_table(table, src, row_group_size=128)
    r = tidepool("import", "--data", data, "--collection", "c", "--metric", "l2", "--id-column", "key", "--vector-column",
                 "emb", src)
    assert r.returncode == 0, r.stderr
    docs = exported(data, "c")
    assert len(docs) == 500
    for i in (0, 7, 499):
        d = docs[f"k{i}"]
        assert np.array_equal(np.asarray(d["vector"], np.float32), vecs[i])
        want = {"title": f"title {i}", "tags": ["a", "b"] if i % 2 else []}
        if i % 7:
            want["year"] = 2000 + i % 20
        assert d["attributes"] == want
    # Out as Parquet: id, vector (fixed-size float32) and one column per attribute.
    out = os.path.join(work, "out.parquet")
    r = tidepool("export", "--data", data, "--collection", "c", "--to", out)
    assert r.returncode == 0, r.stderr
    back = pq.read_table(out)
    assert back.num_rows == 500 and back.schema.field("vector").type == pa.list_(pa.float32(), 6)
    row = {n: back.column(n)[back.column("id").to_pylist().index("k3")].as_py() for n in back.column_names}
    assert np.array_equal(np.asarray(row["vector"], np.float32), vecs[3]) and row["year"] == 2003
    # And that file imports again, unchanged.
    r = tidepool("import", "--data", os.path.join(work, "again"), "--collection", "c", "--metric", "l2", out)
    assert r.returncode == 0, r.stderr
    assert exported(os.path.join(work, "again"), "c") == docs


def test_ann_benchmarks_hdf5_and_refusals():
    work = tempfile.mkdtemp(prefix="tidepool-h5-")
    data = os.path.join(work, "db")
    rng = np.random.default_rng(5)
    train = rng.standard_normal((300, 8))
    path = os.path.join(work, "set.hdf5")
    with h5py.File(path, "w") as f:
        f["train"] = train
        f["test"] = rng.standard_normal((10, 8))
        f["neighbors"] = np.zeros((10, 10), dtype=np.int32)
    r = tidepool("import", "--data", data, "--collection", "c", "--metric", "l2", "--first-id", "1000", path)
    assert r.returncode == 0, r.stderr
    docs = exported(data, "c")
    assert sorted(docs) == list(range(1000, 1300))
    assert np.array_equal(np.asarray(docs[1005]["vector"], np.float32), train[5].astype(np.float32))
    r = tidepool("import", "--data", data, "--collection", "d", "--dataset", "missing", path)
    assert r.returncode == 1 and "no dataset 'missing'" in r.stderr
    bad = os.path.join(work, "bad.parquet")
    pq.write_table(pa.table({"id": [1]}), bad)
    r = tidepool("import", "--data", data, "--collection", "d", bad)
    assert r.returncode == 1 and "no column 'vector'" in r.stderr


def test_convert_tool_alone(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    v = base64.b64encode(np.array([1, 2], "<f4").tobytes()).decode()
    jsonl.write_text(json.dumps({"id": 1, "vector_b64": v, "attributes": {"a": 1}}) + "\n" +
                     json.dumps({"id": 2, "attributes": {"a": 2.5, "s": None}}) + "\n")
    from tidepool_client.convert import main
    assert main(["to-parquet", str(jsonl), str(tmp_path / "o.parquet")]) == 0
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.column("a").type == pa.float64() and t.column("vector").to_pylist() == [[1.0, 2.0], None]
    (tmp_path / "mixed.jsonl").write_text('{"id": 1}\n{"id": "x"}\n')
    assert main(["to-parquet", str(tmp_path / "mixed.jsonl"), str(tmp_path / "m.parquet")]) == 1
