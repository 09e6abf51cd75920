"""Typed answers: search hits and documents, with vectors as float32 numpy arrays, and lists of
them that turn into pandas DataFrames or Arrow tables."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Optional

import numpy as np

from ._wire import DocumentID, decode_vector

__all__ = ["Hit", "Hits", "Document", "Documents"]


class _Record:
    """Dict-style reading (``hit["id"]``, ``hit.get("attributes")``) beside attribute access."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in self._names() else None
        return default if value is None else value

    def keys(self) -> List[str]:
        return [n for n in self._names() if getattr(self, n) is not None]

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def _names(cls) -> List[str]:
        return [f.name for f in fields(cls)]  # type: ignore[arg-type]


@dataclass(frozen=True)
class Hit(_Record):
    """One search result. Vector search fills ``distance`` (smaller is closer, in the collection's metric);
    text (BM25) search fills ``score``; hybrid search fills ``score`` (fused) and the ranks and text score."""

    id: DocumentID
    distance: Optional[float] = None
    score: Optional[float] = None
    attributes: Optional[Dict[str, Any]] = None
    vector: Optional[np.ndarray] = None
    vector_rank: Optional[int] = None
    text_rank: Optional[int] = None
    text_score: Optional[float] = None

    @staticmethod
    def from_json(o: Dict[str, Any]) -> "Hit":
        vector = o.get("vector_b64")
        return Hit(
            id=o["id"], distance=o.get("distance"), score=o.get("score"), attributes=o.get("attributes"),
            vector=decode_vector(vector) if vector is not None else _array(o.get("vector")),
            vector_rank=o.get("vector_rank"), text_rank=o.get("text_rank"), text_score=o.get("text_score"))


@dataclass(frozen=True)
class Document(_Record):
    """A stored document: id, attributes and (when asked for) its vector."""

    id: DocumentID
    attributes: Dict[str, Any]
    vector: Optional[np.ndarray] = None

    @staticmethod
    def from_json(o: Dict[str, Any]) -> "Document":
        vector = o.get("vector_b64")
        return Document(
            id=o["id"], attributes=o.get("attributes") or {},
            vector=decode_vector(vector) if vector is not None else _array(o.get("vector")))


def _array(v: Optional[List[float]]) -> Optional[np.ndarray]:
    return None if v is None else np.asarray(v, dtype=np.float32)


class _Table(list):
    _columns: List[str] = []

    @property
    def ids(self) -> List[DocumentID]:
        return [r.id for r in self]

    def _data(self) -> Dict[str, Any]:
        """Columns: the record's own fields that any row has, then one column per attribute name."""
        data: Dict[str, Any] = {}
        for name in self._columns:
            if name == "id" or any(getattr(r, name) is not None for r in self):
                data[name] = [getattr(r, name) for r in self]
        names: Dict[str, None] = {}
        for r in self:
            for k in (r.attributes or {}):
                names.setdefault(k, None)
        for k in names:
            column = k if k not in data and k != "vector" else f"attributes.{k}"
            data[column] = [(r.attributes or {}).get(k) for r in self]
        if any(r.vector is not None for r in self):
            data["vector"] = [r.vector for r in self]
        return data

    def to_pandas(self) -> Any:
        """A pandas DataFrame: one row per record, one column per attribute, ``vector`` holding arrays."""
        import pandas as pd

        return pd.DataFrame(self._data())

    def to_arrow(self) -> Any:
        """A pyarrow Table; vectors become a fixed-size list column of float32."""
        import pyarrow as pa

        data = self._data()
        vectors = data.pop("vector", None)
        table = pa.table(data)
        if vectors is not None:
            # Documents without a vector: null, not NaN (which the server would refuse on the way back).
            width = next(len(v) for v in vectors if v is not None)
            column = pa.array([None if v is None else v.tolist() for v in vectors], type=pa.list_(pa.float32(), width))
            table = table.append_column("vector", column)
        return table


class Hits(_Table):
    """The hits of one query, best first (a list of :class:`Hit`)."""

    _columns = ["id", "distance", "score", "vector_rank", "text_rank", "text_score"]


class Documents(_Table):
    """Documents from ``get`` or ``scan`` (a list of :class:`Document`)."""

    _columns = ["id"]
