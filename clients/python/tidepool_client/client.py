"""The synchronous client: :class:`Client` (one server) and :class:`Collection` (one collection on it)."""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set

import httpx

from . import _calls
from ._bulk import UpsertPlan, from_table, halves, is_table, progress_bar
from ._transport import Call, RetryPolicy, answer_error, body, connection_error, headers, parse, retryable_answer, \
    retryable_exception
from .errors import PayloadTooLargeError
from .results import Documents, Hits

DEFAULT_URL = "http://127.0.0.1:8080"


class Client:
    """A connection pool to one Tidepool server.

    ``url`` defaults to ``$TIDEPOOL_URL`` or http://127.0.0.1:8080, ``api_key`` to ``$TIDEPOOL_API_KEY``.
    Calls that are safe to repeat are retried with backoff on 429, 502, 503, 504 and lost connections
    (``max_retries`` times); errors are :class:`~tidepool_client.errors.TidepoolError` subclasses.
    ``compression=True`` gzips request bodies of 1 KiB or more and asks for gzipped answers (for slow
    networks; on a fast one it costs more CPU than it saves). ``transport`` replaces httpx's (a proxy, a
    Unix socket, a test double). Thread-safe; use it as a context
    manager or call :meth:`close`.
    """

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, *, timeout: float = 30.0,
                 max_retries: int = 5, backoff: float = 0.25, max_backoff: float = 8.0,
                 extra_headers: Optional[Dict[str, str]] = None, max_connections: int = 32, compression: bool = False,
                 transport: Optional[httpx.BaseTransport] = None):
        self.url = (url or os.environ.get("TIDEPOOL_URL") or DEFAULT_URL).rstrip("/")
        self.retry = RetryPolicy(max_retries, backoff, max_backoff)
        self.compression = compression
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout,
            headers=headers(api_key or os.environ.get("TIDEPOOL_API_KEY"), extra_headers, compression),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _run(self, call: Call) -> Any:
        content, extra = body(call.content(), self.compression)
        attempt = 0
        while True:
            try:
                r = self._http.request(call.method, call.path, content=content, headers=extra)
            except httpx.TransportError as e:
                if attempt < self.retry.max_retries and retryable_exception(call, e):
                    time.sleep(self.retry.delay(attempt, None))
                    attempt += 1
                    continue
                raise connection_error(call, e) from e
            if r.status_code < 400:
                return parse(call, r)
            error = answer_error(r)
            if attempt < self.retry.max_retries and retryable_answer(call, r.status_code):
                time.sleep(self.retry.delay(attempt, error.retry_after))
                attempt += 1
                continue
            raise error

    def health(self) -> bool:
        return self._run(Call("GET", "/health")).get("status") == "ok"

    def server_version(self) -> str:
        """The server's release (``tidepool --version``), from /health."""
        return str(self._run(Call("GET", "/health"))["version"])

    def list_collections(self) -> List[Dict[str, Any]]:
        return self._run(Call("GET", "/v1/collections"))["collections"]

    def create_collection(self, name: str, dimension: int, metric: str = "cosine", **config: Any) -> "Collection":
        """Creates a collection. ``metric``: cosine, l2 or ip; ``config``: m, ef_construction, ef_search,
        text_fields, attribute_types, quantization, index … (docs/HTTP.md)."""
        self._run(_calls.create_collection(name, dimension, metric, config))
        return Collection(self, name)

    def collection(self, name: str) -> "Collection":
        return Collection(self, name)

    def delete_collection(self, name: str) -> None:
        self._run(Call("DELETE", _calls.collection_path(name), idempotent=False))

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


class Collection:
    """One collection on the server. Created by :meth:`Client.create_collection` or :meth:`Client.collection`."""

    def __init__(self, client: Client, name: str):
        self.client, self.name = client, name
        self._path = _calls.collection_path(name)
        self._dimension: Optional[int] = None

    def __repr__(self) -> str:
        return f"Collection({self.name!r})"

    def describe(self) -> Dict[str, Any]:
        return self.client._run(Call("GET", self._path))

    @property
    def count(self) -> int:
        return int(self.describe()["count"])

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.describe()["dimension"])
        return self._dimension

    def update_settings(self, **config: Any) -> Dict[str, Any]:
        """Changes index settings (m, ef_construction, ef_search, quantization="none"|"sq8"|"f16"|"pq"|"rabitq",
        index="auto"|"flat"|"hnsw"|"ivf", nlist, nprobe, pq_subspaces …); segments are rebuilt in the background.
        Returns the new description."""
        return self.client._run(Call("PATCH", self._path, {"config": config}))

    def upsert(self, ids: Any = None, vectors: Any = None, attributes: Optional[Sequence[Optional[dict]]] = None, *,
               data: Any = None, id_column: str = "id", vector_column: str = "vector",
               create: Optional[Dict[str, Any]] = None, batch_size: int = 1000, max_bytes: int = 8 << 20,
               parallel: int = 4, progress: Any = False) -> int:
        """Inserts or replaces documents, any number: split into requests of at most ``batch_size`` documents and
        about ``max_bytes``, ``parallel`` at a time, retried when safe. Give ``ids`` (list, numpy or pandas) with
        ``vectors`` (2-D numpy of any float dtype, list of lists) and optional ``attributes``; or ``data``: a pandas
        DataFrame, pyarrow Table or list of dicts with ``id_column`` and ``vector_column`` (other columns become
        attributes). A document may have no vector (``vectors`` None, or None in its place): it is found by filters,
        scans and text search, never by vector search. ``progress``: True for a tqdm bar, or a callable
        ``(done, total)``. Returns the count written."""
        if data is None and vectors is None and is_table(ids):
            ids, data = None, ids
        if data is not None:
            ids, vectors, attributes = from_table(data, id_column, vector_column)
        if ids is None:
            raise ValueError("give ids (with vectors and attributes), or data")
        plan = UpsertPlan(ids, vectors, attributes, create, batch_size, max_bytes)
        step, close = progress_bar(progress, len(plan))
        try:
            return self._send(plan, max(1, parallel), step)
        finally:
            close()

    def _send(self, plan: UpsertPlan, parallel: int, step: Any) -> int:
        written = 0
        with ThreadPoolExecutor(parallel, thread_name_prefix="tidepool-upsert") as pool:
            pending: Set[Future] = set()
            try:
                chunks = plan.chunks()
                if plan.creates:
                    # The first chunk alone: it creates the collection the others then write to.
                    first = next(chunks, None)
                    if first is not None:
                        written += self._send_chunk(plan, first, step)
                for docs in chunks:
                    if len(pending) >= parallel * 2:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        written += sum(f.result() for f in done)
                    pending.add(pool.submit(self._send_chunk, plan, docs, step))
                for f in pending:
                    written += f.result()
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
        return written

    def _send_chunk(self, plan: UpsertPlan, docs: List[str], step: Any) -> int:
        try:
            n = int(self.client._run(plan.call(self._path, docs)))
        except PayloadTooLargeError:
            if len(docs) == 1:
                raise
            first, second = halves(docs)
            return self._send_chunk(plan, first, step) + self._send_chunk(plan, second, step)
        step(len(docs))
        return n

    def query(self, vector: Any = None, k: int = 10, *, vectors: Any = None, ef: Optional[int] = None,
              exact: bool = False, filter: Optional[dict] = None, include: Optional[Iterable[str]] = None,
              text: Optional[str] = None, text_match: Optional[str] = None, fusion: Optional[str] = None,
              vector_weight: Optional[float] = None, rerank: Optional[int] = None, nprobe: Optional[int] = None,
              as_of: Any = None) -> Any:
        """Vector, text (BM25) or hybrid (both) search; returns :class:`Hits`, best first. ``vector`` may be a list,
        a 1-D array or a ``(1, D)`` array. With ``vectors`` (a batch: 2-D array or list), returns one Hits per
        vector, in requests within the server's limits. ``include``: "attributes", "vectors".
        ``as_of`` reads a kept version: its number, or a time (a datetime or an RFC 3339 string)."""
        body = _calls.query_body(k, ef, exact, filter, include, text, text_match, fusion, vector_weight, rerank,
                                 nprobe, as_of)
        if vectors is not None:
            if vector is not None:
                raise ValueError("give vector or vectors, not both")
            out: List[Hits] = []
            for call in _calls.query_batches(self._path, vectors, body):
                out += self.client._run(call)
            return out
        return self.client._run(_calls.query(self._path, vector, body))

    def get(self, ids: Sequence[Any], include_vectors: bool = True, as_of: Any = None) -> Documents:
        """The documents with these ids that exist (vectors as float32 arrays)."""
        out = Documents()
        for call in _calls.get_batches(self._path, ids, include_vectors, as_of,
                                       self.dimension if include_vectors else 0):
            out += self.client._run(call)
        return out

    def scan(self, filter: Optional[dict] = None, page_size: int = 1000, include_vectors: bool = False,
             as_of: Any = None) -> Iterator[Any]:
        """Every matching document in id order, following the server's cursor page by page."""
        after = None
        while True:
            page, after = self.client._run(
                _calls.scan_page(self._path, filter, after, page_size, include_vectors, as_of))
            yield from page
            if after is None:
                return

    def count_matching(self, filter: Optional[dict] = None, as_of: Any = None) -> int:
        """How many live documents ``filter`` admits (all of them without one)."""
        return self.client._run(_calls.count(self._path, filter, as_of))

    def facets(self, attribute: str, filter: Optional[dict] = None, limit: int = 10,
               as_of: Any = None) -> List[Dict[str, Any]]:
        """The ``limit`` most frequent values of ``attribute`` (a dotted path reaches object members) among the
        documents ``filter`` admits, most frequent first: ``[{"value": "en", "count": 812}, ...]``."""
        return self.client._run(_calls.facets(self._path, attribute, filter, limit, as_of))

    def delete(self, ids: Optional[Sequence[Any]] = None, filter: Optional[dict] = None) -> int:
        """Deletes by ids or by filter; returns how many existed."""
        return sum(self.client._run(call) for call in _calls.delete(self._path, ids, filter))

    # Versions, snapshots, restores and branches (docs/VERSIONS.md).

    def versions(self) -> Dict[str, Any]:
        """The current version number and the kept versions, oldest first: {"version": n, "versions": [...]}."""
        return self.client._run(Call("GET", self._path + "/versions"))

    def restore(self, version: Optional[int] = None, time: Any = None, sequence: Optional[int] = None) -> int:
        """Makes a kept version current again, or with ``sequence`` the state right after that logged operation
        (``describe()["last_seq"]`` at the moment to return to); returns the new version's number."""
        return self.client._run(_calls.restore(self._path, version, time, sequence))

    def snapshots(self) -> List[Dict[str, Any]]:
        return self.client._run(Call("GET", self._path + "/snapshots"))["snapshots"]

    def create_snapshot(self, name: str, version: Optional[int] = None) -> Dict[str, Any]:
        """Pins a version (default: the current state, flushed first) under ``name``."""
        return self.client._run(_calls.create_snapshot(self._path, name, version))

    def delete_snapshot(self, name: str) -> None:
        self.client._run(Call("DELETE", self._path + "/snapshots/" + _calls.quote(name, safe=""), idempotent=False))

    def branch(self, name: str, version: Optional[int] = None, time: Any = None) -> "Collection":
        """Creates collection ``name`` as a copy-on-write branch of this one (the current state, or a kept version)."""
        self.client._run(_calls.branch(self._path, name, version, time))
        return Collection(self.client, name)
