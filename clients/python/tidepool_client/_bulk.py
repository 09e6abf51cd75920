"""Bulk upserts: any batch, from numpy, lists, pandas or Arrow, cut into requests that fit the
server's limits and sent in parallel by the sync (threads) or async (tasks) client.

A request that is still too large (413) is split in half and sent again; an id given twice keeps
its last occurrence (as one sequential write would), because chunks may land in any order.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ._transport import Call
from ._wire import DocumentID, document_json, dumps, ids_list, matrix_b64, vectors_with_gaps

Progress = Callable[[int], None]


class UpsertPlan:
    """Documents ready to send: ids, float32 vectors (a row of zeros where a document has none, per
    `present`), attributes; `chunks()` encodes lazily."""

    def __init__(self, ids: Any, vectors: Any, attributes: Optional[Sequence[Optional[Dict[str, Any]]]],
                 create: Optional[Dict[str, Any]], batch_size: int, max_bytes: int):
        if batch_size < 1 or max_bytes < 1024:
            raise ValueError("batch_size must be at least 1 and max_bytes at least 1024")
        self.ids: List[DocumentID] = ids_list(ids)
        self.vectors, self.present = vectors_with_gaps(vectors, len(self.ids))
        self.attributes = list(attributes) if attributes is not None else None
        n = len(self.ids)
        if self.vectors.shape[0] != n:
            raise ValueError(f"ids and vectors differ in length: {n} ids, {self.vectors.shape[0]} vectors")
        if self.attributes is not None and len(self.attributes) != n:
            raise ValueError(f"ids and attributes differ in length: {n} ids, {len(self.attributes)} attributes")
        self._keep_last_of_each_id()
        self.creates = create is not None
        self.prefix = ('{"create":' + dumps(create) + ',"documents":[') if create is not None else '{"documents":['
        self.batch = self._batch_size(batch_size, max_bytes)

    def __len__(self) -> int:
        return len(self.ids)

    def _keep_last_of_each_id(self) -> None:
        last = {doc_id: i for i, doc_id in enumerate(self.ids)}
        if len(last) == len(self.ids):
            return
        keep = sorted(last.values())
        self.ids = [self.ids[i] for i in keep]
        self.vectors = self.vectors[keep]
        if self.present is not None:
            self.present = self.present[keep]
        if self.attributes is not None:
            self.attributes = [self.attributes[i] for i in keep]

    def _batch_size(self, batch_size: int, max_bytes: int) -> int:
        """Documents per request: at most `batch_size`, and about `max_bytes` judged from a sample."""
        n = len(self.ids)
        if n == 0:
            return batch_size
        sample = range(0, n, max(1, n // 64))
        attr_bytes = 0.0
        if self.attributes is not None:
            attr_bytes = max(len(dumps(self.attributes[i] or {})) for i in sample)
        per_doc = math.ceil(self.vectors.shape[1] * 4 / 3) + 4 + 48 + attr_bytes
        return max(1, min(batch_size, int(max_bytes // per_doc)))

    def chunks(self) -> Iterator[List[str]]:
        """Each request's documents as JSON texts, encoded only when asked for."""
        for start in range(0, len(self.ids), self.batch):
            end = min(len(self.ids), start + self.batch)
            b64: List[Optional[str]] = list(matrix_b64(self.vectors[start:end]))
            if self.present is not None:
                b64 = [b if p else None for b, p in zip(b64, self.present[start:end])]
            attrs = self.attributes
            yield [document_json(self.ids[i], b64[i - start], attrs[i] if attrs is not None else None)
                   for i in range(start, end)]

    def call(self, path: str, docs: List[str]) -> Call:
        body = (self.prefix + ",".join(docs) + "]}").encode("utf-8")
        return Call("POST", path + "/upsert", body, parse=lambda a: int(a["upserted"]))


def halves(docs: List[str]) -> Tuple[List[str], List[str]]:
    """A request the server found too large (413), split in two."""
    mid = len(docs) // 2
    return docs[:mid], docs[mid:]


def is_table(data: Any) -> bool:
    """A pandas DataFrame, a pyarrow Table or RecordBatch, or a list of dicts: what ``upsert(data)`` takes."""
    if hasattr(data, "columns") and hasattr(data, "to_dict"):
        return True
    if hasattr(data, "column_names") and hasattr(data, "to_pylist"):
        return True
    return isinstance(data, (list, tuple)) and len(data) > 0 and isinstance(data[0], dict)


def from_table(data: Any, id_column: str, vector_column: str) -> Tuple[List[DocumentID], Any,
                                                                           List[Dict[str, Any]]]:
    """ids, vectors and attributes (every other column) of a pandas DataFrame, a pyarrow Table or a list of
    records (dicts with `id`, `vector` and either `attributes` or other keys). Missing values (pandas NaN,
    None in a table) leave the attribute out."""
    if hasattr(data, "columns") and hasattr(data, "to_dict"):  # pandas
        for c in (id_column, vector_column):
            if c not in data.columns:
                raise ValueError(f"the DataFrame has no column '{c}' (columns: {list(data.columns)})")
        import pandas as pd

        rest = data.drop(columns=[id_column, vector_column])
        attrs = [{k: v for k, v in row.items() if not _missing(v, pd)} for row in rest.to_dict("records")]
        return ids_list(data[id_column]), list(data[vector_column]), attrs
    if hasattr(data, "column_names") and hasattr(data, "to_pylist"):  # pyarrow
        for c in (id_column, vector_column):
            if c not in data.column_names:
                raise ValueError(f"the table has no column '{c}' (columns: {data.column_names})")
        column = data.column(vector_column).combine_chunks()
        vectors: Any = column
        if hasattr(column.type, "list_size") and column.null_count == 0:
            vectors = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
        rest = data.drop_columns([id_column, vector_column]).to_pylist()
        attrs = [{k: v for k, v in row.items() if v is not None} for row in rest]
        return ids_list(data.column(id_column)), vectors, attrs
    rows = list(data)
    ids, vectors, attrs = [], [], []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or id_column not in r:
            raise ValueError(f"record {i} must be a dict with '{id_column}' (and '{vector_column}' unless it has no vector)")
        ids.append(r[id_column])
        vectors.append(r.get(vector_column))
        if "attributes" in r:
            attrs.append(r["attributes"] or {})
        else:
            attrs.append({k: v for k, v in r.items() if k not in (id_column, vector_column)})
    return ids_list(ids), vectors, attrs


def _missing(v: Any, pd: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # arrays and lists: present
        return False


def progress_bar(progress: Any, total: int) -> Tuple[Progress, Callable[[], None]]:
    """`progress`: True for a tqdm bar (when tqdm is installed), a callable taking (done, total), or falsy."""
    if callable(progress):
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            progress(done[0], total)

        return step, lambda: None
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return (lambda n: None), (lambda: None)
        bar = tqdm(total=total, unit="doc", unit_scale=True, desc="upsert")
        return bar.update, bar.close
    return (lambda n: None), (lambda: None)
