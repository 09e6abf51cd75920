"""What travels: vectors as base64 little-endian float32, ids, attributes, and request bodies.

Vectors never travel as JSON numbers from this client: base64 float32 is exact (no
``0.10000000149011612``), about a third of the bytes, and nothing for the server to parse.
"""
from __future__ import annotations

import base64
import datetime
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

DocumentID = Union[int, str]


def as_vector(v: Any) -> np.ndarray:
    """One vector as float32: a list, tuple or numpy array of any numeric dtype, or a ``(1, D)`` array."""
    a = np.asarray(v, dtype="<f4")
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1:
        raise ValueError(f"a query vector must be 1-D or one row (1, D), got shape {a.shape}; use vectors= for a batch")
    return a


def as_matrix(vectors: Any) -> np.ndarray:
    """Vectors as a C-contiguous ``(n, D)`` float32 array: a 2-D numpy array (any numeric dtype), a list of
    lists or of 1-D arrays, a pandas Series of arrays, or a pyarrow (fixed-size) list array."""
    if isinstance(vectors, np.ndarray) and vectors.dtype != object:
        a = vectors
    else:
        if hasattr(vectors, "to_numpy") and type(vectors).__module__.split(".")[0] == "pyarrow":
            vectors = vectors.to_numpy(zero_copy_only=False)
        elif hasattr(vectors, "to_numpy"):  # pandas Series
            vectors = vectors.to_numpy()
        rows = [np.asarray(v, dtype="<f4").reshape(-1) for v in vectors]
        if not rows:
            return np.zeros((0, 0), dtype="<f4")
        width = rows[0].shape[0]
        for i, r in enumerate(rows):
            if r.shape[0] != width:
                raise ValueError(f"vectors differ in length: vector 0 has {width} values, vector {i} has {r.shape[0]}")
        a = np.stack(rows)
    if a.ndim == 1 and a.shape[0] == 0:
        return np.zeros((0, 0), dtype="<f4")
    if a.ndim != 2:
        raise ValueError(f"vectors must be 2-D (n, D), got shape {a.shape}")
    return np.ascontiguousarray(a, dtype="<f4")


def vectors_with_gaps(vectors: Any, n: int) -> "tuple[np.ndarray, Optional[np.ndarray]]":
    """Vectors where some documents may have none (None in a list, or ``vectors`` None for all):
    a float32 matrix with zero rows in the gaps, and a mask of the rows that have one (None when all do)."""
    if vectors is None:
        return np.zeros((n, 0), dtype="<f4"), np.zeros(n, dtype=bool)
    if isinstance(vectors, np.ndarray) and vectors.dtype != object:
        return as_matrix(vectors), None
    if hasattr(vectors, "to_pylist") and type(vectors).__module__.split(".")[0] == "pyarrow" and vectors.null_count == 0:
        return as_matrix(vectors), None
    rows = vectors.to_pylist() if hasattr(vectors, "to_pylist") else list(vectors)
    present = np.array([r is not None and not (isinstance(r, float) and r != r) for r in rows], dtype=bool)
    if present.all():
        return as_matrix(rows), None
    given = as_matrix([r for r, p in zip(rows, present) if p])
    full = np.zeros((len(rows), given.shape[1] if given.size else 0), dtype="<f4")
    full[present] = given
    return full, present


def vector_b64(v: Any) -> str:
    return base64.b64encode(as_vector(v).tobytes()).decode("ascii")


def matrix_b64(a: np.ndarray) -> List[str]:
    """One base64 string per row of a float32 matrix. When a row's bytes are a multiple of 3 (D a
    multiple of 3, as 384 and 768 are), the whole matrix is encoded in one call and cut."""
    n, d = a.shape
    if (d * 4) % 3 == 0:
        text = base64.b64encode(a.tobytes()).decode("ascii")
        w = d * 4 // 3 * 4
        return [text[i * w:(i + 1) * w] for i in range(n)]
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in a]


def decode_vector(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


def document_id(x: Any) -> DocumentID:
    """An id as the server takes it: a string, or an integer in 0 ..< 2^64 (numpy integers included)."""
    if isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("a document id is a string or a non-negative integer, not a bool")
    if isinstance(x, (int, np.integer)):
        i = int(x)
        if not 0 <= i < 1 << 64:
            raise ValueError(f"an integer document id must be in 0 ..< 2^64, got {i}")
        return i
    raise TypeError(f"a document id is a string or a non-negative integer, not {type(x).__name__}")


def ids_list(ids: Any) -> List[DocumentID]:
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu":
        if ids.size and int(ids.min()) < 0:
            raise ValueError("an integer document id must be non-negative")
        return [int(x) for x in ids.tolist()]
    if hasattr(ids, "to_pylist"):  # pyarrow
        ids = ids.to_pylist()
    elif hasattr(ids, "tolist"):  # pandas, numpy of objects
        ids = ids.tolist()
    return [document_id(x) for x in ids]


def _json_default(v: Any) -> Any:
    """numpy scalars and arrays, dates: what loaders produce, in their JSON form."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    raise TypeError(f"an attribute value of type {type(v).__name__} has no JSON form")


def dumps(value: Any) -> str:
    """JSON text; NaN and infinity are refused (JSON has no form for them)."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except ValueError as e:
        raise ValueError(f"cannot send {str(e).lower()}: NaN and infinity have no JSON form") from None


def plain(value: Any) -> Any:
    """A value with numpy scalars and arrays turned into Python ones (for filters and attributes)."""
    return json.loads(dumps(value))


def document_json(doc_id: DocumentID, b64: Optional[str], attributes: Optional[Dict[str, Any]]) -> str:
    """One upsert document's JSON text, written directly (bulk loads build 100,000s of them);
    ``b64`` None for a document without a vector."""
    ident = str(doc_id) if isinstance(doc_id, int) else json.dumps(doc_id, ensure_ascii=False)
    vector = f',"vector_b64":"{b64}"' if b64 is not None else ""
    if attributes:
        return f'{{"id":{ident}{vector},"attributes":{dumps(attributes)}}}'
    return f'{{"id":{ident}{vector}}}'


def as_of(v: Any) -> Any:
    """A version number, a datetime (naive means UTC) or an RFC 3339 string."""
    if isinstance(v, datetime.datetime):
        return rfc3339(v)
    if isinstance(v, str):
        return v
    return int(v)


def rfc3339(t: datetime.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def version_choice(version: Optional[int], time: Any) -> Dict[str, Any]:
    if (version is None) == (time is None):
        raise ValueError("give exactly one of version and time")
    if version is not None:
        return {"version": int(version)}
    return {"time": rfc3339(time) if isinstance(time, datetime.datetime) else str(time)}


def records(data: Any) -> Iterable[Dict[str, Any]]:
    """Rows of a pandas DataFrame or a pyarrow Table (or a list of dicts) as dicts."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas
        return data.to_dict("records")
    if hasattr(data, "to_pylist"):  # pyarrow Table / RecordBatch
        return data.to_pylist()
    return data


def split_sequence(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
