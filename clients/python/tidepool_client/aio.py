"""The asynchronous client (asyncio): :class:`AsyncClient` and :class:`AsyncCollection`, the same
calls as the sync client, awaited; bulk upserts run as bounded concurrent tasks."""
from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, Dict, Iterable, List, Optional, Sequence

import httpx

from . import _calls
from ._bulk import UpsertPlan, from_table, halves, is_table, progress_bar
from ._transport import Call, RetryPolicy, answer_error, body, connection_error, headers, parse, retryable_answer, \
    retryable_exception
from .client import DEFAULT_URL
from .errors import PayloadTooLargeError
from .results import Documents, Hits


class AsyncClient:
    """An asyncio connection pool to one Tidepool server; see :class:`tidepool_client.Client` for the options."""

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, *, timeout: float = 30.0,
                 max_retries: int = 5, backoff: float = 0.25, max_backoff: float = 8.0,
                 extra_headers: Optional[Dict[str, str]] = None, max_connections: int = 32, compression: bool = False,
                 transport: Optional[httpx.AsyncBaseTransport] = None):
        self.url = (url or os.environ.get("TIDEPOOL_URL") or DEFAULT_URL).rstrip("/")
        self.retry = RetryPolicy(max_retries, backoff, max_backoff)
        self.compression = compression
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout,
            headers=headers(api_key or os.environ.get("TIDEPOOL_API_KEY"), extra_headers, compression),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _run(self, call: Call) -> Any:
        content, extra = body(call.content(), self.compression)
        attempt = 0
        while True:
            try:
                r = await self._http.request(call.method, call.path, content=content, headers=extra)
            except httpx.TransportError as e:
                if attempt < self.retry.max_retries and retryable_exception(call, e):
                    await asyncio.sleep(self.retry.delay(attempt, None))
                    attempt += 1
                    continue
                raise connection_error(call, e) from e
            if r.status_code < 400:
                return parse(call, r)
            error = answer_error(r)
            if attempt < self.retry.max_retries and retryable_answer(call, r.status_code):
                await asyncio.sleep(self.retry.delay(attempt, error.retry_after))
                attempt += 1
                continue
            raise error

    async def health(self) -> bool:
        return (await self._run(Call("GET", "/health"))).get("status") == "ok"

    async def server_version(self) -> str:
        return str((await self._run(Call("GET", "/health")))["version"])

    async def list_collections(self) -> List[Dict[str, Any]]:
        return (await self._run(Call("GET", "/v1/collections")))["collections"]

    async def create_collection(self, name: str, dimension: int, metric: str = "cosine",
                                **config: Any) -> "AsyncCollection":
        await self._run(_calls.create_collection(name, dimension, metric, config))
        return AsyncCollection(self, name)

    def collection(self, name: str) -> "AsyncCollection":
        return AsyncCollection(self, name)

    async def delete_collection(self, name: str) -> None:
        await self._run(Call("DELETE", _calls.collection_path(name), idempotent=False))


class AsyncCollection:
    """One collection, for :class:`AsyncClient`; the methods of :class:`tidepool_client.Collection`, awaited."""

    def __init__(self, client: AsyncClient, name: str):
        self.client, self.name = client, name
        self._path = _calls.collection_path(name)
        self._dimension: Optional[int] = None

    async def describe(self) -> Dict[str, Any]:
        return await self.client._run(Call("GET", self._path))

    async def count(self) -> int:
        return int((await self.describe())["count"])

    async def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int((await self.describe())["dimension"])
        return self._dimension

    async def update_settings(self, **config: Any) -> Dict[str, Any]:
        return await self.client._run(Call("PATCH", self._path, {"config": config}))

    async def upsert(self, ids: Any = None, vectors: Any = None,
                     attributes: Optional[Sequence[Optional[dict]]] = None, *, data: Any = None,
                     id_column: str = "id", vector_column: str = "vector", create: Optional[Dict[str, Any]] = None,
                     batch_size: int = 1000, max_bytes: int = 8 << 20, parallel: int = 4,
                     progress: Any = False) -> int:
        if data is None and vectors is None and is_table(ids):
            ids, data = None, ids
        if data is not None:
            ids, vectors, attributes = from_table(data, id_column, vector_column)
        if ids is None:
            raise ValueError("give ids (with vectors and attributes), or data")
        plan = UpsertPlan(ids, vectors, attributes, create, batch_size, max_bytes)
        step, close = progress_bar(progress, len(plan))
        gate = asyncio.Semaphore(max(1, parallel))
        tasks: List["asyncio.Task[int]"] = []
        try:
            chunks = plan.chunks()
            written = 0
            if plan.creates:
                # The first chunk alone: it creates the collection the others then write to.
                first = next(chunks, None)
                if first is not None:
                    written = await self._send_chunk(plan, first, step, None)
            for docs in chunks:
                await gate.acquire()
                for t in tasks:  # fail fast: a chunk that failed stops the rest
                    if t.done() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                tasks.append(asyncio.ensure_future(self._send_chunk(plan, docs, step, gate)))
            return written + sum(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # none left running after the error is seen
            raise
        finally:
            close()

    async def _send_chunk(self, plan: UpsertPlan, docs: List[str], step: Any, gate: Optional[asyncio.Semaphore]) -> int:
        try:
            try:
                n = int(await self.client._run(plan.call(self._path, docs)))
            except PayloadTooLargeError:
                if len(docs) == 1:
                    raise
                first, second = halves(docs)
                return await self._send_chunk(plan, first, step, None) + await self._send_chunk(plan, second, step, None)
            step(len(docs))
            return n
        finally:
            if gate is not None:
                gate.release()

    async def query(self, vector: Any = None, k: int = 10, *, vectors: Any = None, ef: Optional[int] = None,
                    exact: bool = False, filter: Optional[dict] = None, include: Optional[Iterable[str]] = None,
                    text: Optional[str] = None, text_match: Optional[str] = None, fusion: Optional[str] = None,
                    vector_weight: Optional[float] = None, rerank: Optional[int] = None, nprobe: Optional[int] = None,
                    as_of: Any = None) -> Any:
        body = _calls.query_body(k, ef, exact, filter, include, text, text_match, fusion, vector_weight, rerank,
                                 nprobe, as_of)
        if vectors is not None:
            if vector is not None:
                raise ValueError("give vector or vectors, not both")
            out: List[Hits] = []
            for call in _calls.query_batches(self._path, vectors, body):
                out += await self.client._run(call)
            return out
        return await self.client._run(_calls.query(self._path, vector, body))

    async def get(self, ids: Sequence[Any], include_vectors: bool = True, as_of: Any = None) -> Documents:
        out = Documents()
        dimension = await self.dimension() if include_vectors else 0
        for call in _calls.get_batches(self._path, ids, include_vectors, as_of, dimension):
            out += await self.client._run(call)
        return out

    async def scan(self, filter: Optional[dict] = None, page_size: int = 1000, include_vectors: bool = False,
                   as_of: Any = None) -> AsyncIterator[Any]:
        after = None
        while True:
            page, after = await self.client._run(
                _calls.scan_page(self._path, filter, after, page_size, include_vectors, as_of))
            for d in page:
                yield d
            if after is None:
                return

    async def count_matching(self, filter: Optional[dict] = None, as_of: Any = None) -> int:
        """How many live documents ``filter`` admits (all of them without one)."""
        return await self.client._run(_calls.count(self._path, filter, as_of))

    async def facets(self, attribute: str, filter: Optional[dict] = None, limit: int = 10,
               as_of: Any = None) -> List[Dict[str, Any]]:
        """The ``limit`` most frequent values of ``attribute`` (a dotted path reaches object members) among the
        documents ``filter`` admits, most frequent first: ``[{"value": "en", "count": 812}, ...]``."""
        return await self.client._run(_calls.facets(self._path, attribute, filter, limit, as_of))

    async def delete(self, ids: Optional[Sequence[Any]] = None, filter: Optional[dict] = None) -> int:
        total = 0
        for call in _calls.delete(self._path, ids, filter):
            total += await self.client._run(call)
        return total

    async def versions(self) -> Dict[str, Any]:
        return await self.client._run(Call("GET", self._path + "/versions"))

    async def restore(self, version: Optional[int] = None, time: Any = None, sequence: Optional[int] = None) -> int:
        return await self.client._run(_calls.restore(self._path, version, time, sequence))

    async def snapshots(self) -> List[Dict[str, Any]]:
        return (await self.client._run(Call("GET", self._path + "/snapshots")))["snapshots"]

    async def create_snapshot(self, name: str, version: Optional[int] = None) -> Dict[str, Any]:
        return await self.client._run(_calls.create_snapshot(self._path, name, version))

    async def delete_snapshot(self, name: str) -> None:
        await self.client._run(
            Call("DELETE", self._path + "/snapshots/" + _calls.quote(name, safe=""), idempotent=False))

    async def branch(self, name: str, version: Optional[int] = None, time: Any = None) -> "AsyncCollection":
        await self.client._run(_calls.branch(self._path, name, version, time))
        return AsyncCollection(self.client, name)
