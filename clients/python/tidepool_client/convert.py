"""File conversions for ``tidepool import`` and ``tidepool export`` (the Swift CLI runs them), and for anyone:

    python -m tidepool_client.convert to-jsonl FILE.parquet|FILE.hdf5 [--id-column id] [--vector-column vector]
                                               [--dataset train]       # JSON Lines on standard output
    python -m tidepool_client.convert to-parquet FILE.jsonl OUT.parquet

JSON Lines here is Tidepool's document form: ``{"id", "vector_b64" (or "vector"), "attributes"}`` a line.
Parquet needs pyarrow; HDF5 (ann-benchmarks files) needs h5py. Errors name the file and end the process
with status 1.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any, Dict, Iterator, List, Optional, TextIO

import numpy as np

from ._wire import dumps


class ConvertError(Exception):
    pass


def _line(doc_id: Any, vector: Optional[np.ndarray], attributes: Dict[str, Any]) -> str:
    o: Dict[str, Any] = {}
    if doc_id is not None:
        o["id"] = doc_id
    if vector is not None:
        o["vector_b64"] = base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
    if attributes:
        o["attributes"] = attributes
    return dumps(o)


def parquet_lines(path: str, id_column: Optional[str], vector_column: Optional[str]) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConvertError("reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        f = pq.ParquetFile(path)
    except Exception as e:  # pyarrow's own message names the problem
        raise ConvertError(f"{path}: not a readable Parquet file: {e}") from None
    names = f.schema_arrow.names
    id_name = id_column or ("id" if "id" in names else None)
    vector_name = vector_column or "vector"
    for wanted, flag in ((id_column, "--id-column"), (vector_name, "--vector-column")):
        if wanted is not None and wanted not in names:
            raise ConvertError(f"{path}: no column '{wanted}' for {flag} (columns: {', '.join(names)})")
    rest = [n for n in names if n not in (id_name, vector_name)]
    for batch in f.iter_batches(batch_size=4096):
        ids = batch.column(id_name).to_pylist() if id_name else [None] * batch.num_rows
        column = batch.column(vector_name)
        vectors: List[Optional[np.ndarray]]
        if hasattr(column.type, "list_size") and column.null_count == 0:
            flat = column.flatten().to_numpy(zero_copy_only=False)
            vectors = list(flat.reshape(batch.num_rows, column.type.list_size))
        else:
            vectors = [None if v is None else np.asarray(v, dtype=np.float32) for v in column.to_pylist()]
        attrs = batch.select(rest).to_pylist() if rest else [{}] * batch.num_rows
        for doc_id, vector, a in zip(ids, vectors, attrs):
            yield _line(doc_id, vector, {k: v for k, v in a.items() if v is not None})


def hdf5_lines(path: str, dataset: str) -> Iterator[str]:
    try:
        import h5py
    except ImportError:
        raise ConvertError("reading HDF5 needs h5py (pip install h5py)") from None
    with h5py.File(path, "r") as f:
        if dataset not in f:
            raise ConvertError(f"{path}: no dataset '{dataset}' (datasets: {', '.join(f.keys())}); give --dataset")
        data = f[dataset]
        if len(data.shape) != 2 or data.dtype.kind not in "fiu":
            raise ConvertError(f"{path}: dataset '{dataset}' is {data.dtype} of shape {data.shape}, not 2-D numbers")
        for start in range(0, data.shape[0], 8192):
            for row in np.asarray(data[start:start + 8192], dtype=np.float32):
                yield _line(None, row, {})


def to_parquet(jsonl: str, out: str) -> int:
    """JSON Lines (Tidepool's document form) to Parquet: id, vector (fixed-size list of float32, null where
    a document has none) and one column per attribute, typed by its values (int and float mixed: float)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConvertError("writing Parquet needs pyarrow (pip install pyarrow)") from None
    kinds: Dict[str, str] = {}
    id_kinds, dim, rows = set(), 0, 0
    with open(jsonl, encoding="utf-8") as f:  # pass 1: the schema
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            doc = _read(line, jsonl, n)
            rows += 1
            id_kinds.add("string" if isinstance(doc["id"], str) else "int")
            v = _vector(doc)
            if v is not None:
                dim = len(v)
            for k, x in (doc.get("attributes") or {}).items():
                kinds[k] = _widen(kinds.get(k), x, jsonl, n, k)
    if len(id_kinds) > 1:
        raise ConvertError(f"{jsonl}: ids mix integers and strings, which one Parquet column cannot keep apart; "
                           "export to JSON Lines instead")
    types = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string(),
             "strings": pa.list_(pa.string()), "ints": pa.list_(pa.int64()), "floats": pa.list_(pa.float64()),
             "null": pa.string()}
    fields = [pa.field("id", pa.string() if id_kinds == {"string"} else pa.uint64(), nullable=False),
              pa.field("vector", pa.list_(pa.float32(), max(dim, 1)))]
    fields += [pa.field(k, types[t]) for k, t in sorted(kinds.items())]
    schema = pa.schema(fields)
    with pq.ParquetWriter(out, schema) as writer, open(jsonl, encoding="utf-8") as f:  # pass 2
        batch: List[Dict[str, Any]] = []
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            doc = _read(line, jsonl, n)
            v = _vector(doc)
            row = {"id": doc["id"], "vector": None if v is None else v.tolist()}
            row.update(doc.get("attributes") or {})
            batch.append(row)
            if len(batch) == 8192:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return rows


def _read(line: str, path: str, n: int) -> Dict[str, Any]:
    try:
        doc = json.loads(line)
    except ValueError as e:
        raise ConvertError(f"{path} line {n}: not JSON: {e}") from None
    if not isinstance(doc, dict) or "id" not in doc:
        raise ConvertError(f"{path} line {n}: not a document (an object with an id)")
    return doc


def _vector(doc: Dict[str, Any]) -> Optional[np.ndarray]:
    if doc.get("vector_b64") is not None:
        return np.frombuffer(base64.b64decode(doc["vector_b64"]), dtype="<f4")
    if doc.get("vector") is not None:
        return np.asarray(doc["vector"], dtype=np.float32)
    return None


def _widen(kind: Optional[str], x: Any, path: str, n: int, key: str) -> str:
    own: Optional[str]
    if isinstance(x, list):
        # Lists: of strings, of integers, of floats; an empty one takes whatever the others are.
        if not x:
            own = kind if kind in ("strings", "ints", "floats") else "null"
        elif all(isinstance(e, str) for e in x):
            own = "strings"
        elif all(isinstance(e, int) and not isinstance(e, bool) for e in x):
            own = "ints"
        elif all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in x):
            own = "floats"
        else:
            own = None
    else:
        own = ("null" if x is None else "bool" if isinstance(x, bool) else "int" if isinstance(x, int)
               else "float" if isinstance(x, float) else "string" if isinstance(x, str) else None)
    if own is None:
        raise ConvertError(f"{path} line {n}: attribute '{key}' holds a value Parquet export does not take "
                           "(objects: export to JSON Lines)")
    if kind is None or kind == "null":
        return own
    if own == "null" or own == kind:
        return kind
    if {kind, own} in ({"int", "float"}, {"ints", "floats"}):
        return "float" if "float" in (kind, own) else "floats"
    raise ConvertError(f"{path} line {n}: attribute '{key}' is {own} here and {kind} before")


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout) -> int:
    ap = argparse.ArgumentParser(prog="python -m tidepool_client.convert")
    sub = ap.add_subparsers(dest="command", required=True)
    a = sub.add_parser("to-jsonl")
    a.add_argument("file")
    a.add_argument("--id-column")
    a.add_argument("--vector-column")
    a.add_argument("--dataset", default="train")
    b = sub.add_parser("to-parquet")
    b.add_argument("jsonl")
    b.add_argument("out")
    args = ap.parse_args(argv)
    try:
        if args.command == "to-parquet":
            try:
                to_parquet(args.jsonl, args.out)
            except ConvertError:
                raise
            except Exception as e:  # pyarrow's own refusals, named
                raise ConvertError(f"{args.jsonl}: writing {args.out} failed: {type(e).__name__}: {e}") from None
            return 0
        with open(args.file, "rb") as f:
            head = f.read(8)
        if head[:4] == b"PAR1":
            lines = parquet_lines(args.file, args.id_column, args.vector_column)
        elif head == b"\x89HDF\r\n\x1a\n":
            lines = hdf5_lines(args.file, args.dataset)
        else:
            raise ConvertError(f"{args.file}: neither Parquet nor HDF5 (by its first bytes)")
        for line in lines:
            out.write(line)
            out.write("\n")
        out.flush()
        return 0
    except (ConvertError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
