"""The requests of the HTTP API (docs/HTTP.md), built once for the sync and the async client."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence
from urllib.parse import quote

from ._transport import Call
from ._wire import as_matrix, as_of, ids_list, matrix_b64, plain, vector_b64, version_choice
from .results import Document, Documents, Hit, Hits

# The server's default request limits (docs/HTTP.md): ids per get, vectors per query batch, hits per answer.
MAX_IDS = 10_000
MAX_BATCH = 1024
MAX_RESULTS = 100_000
MAX_RETURNED_FLOATS = 4 << 20


def collection_path(name: str) -> str:
    return "/v1/collections/" + quote(name, safe="")


def hits(results: Any) -> Hits:
    return Hits(Hit.from_json(h) for h in results)


def documents(docs: Any) -> Documents:
    return Documents(Document.from_json(d) for d in docs)


def create_collection(name: str, dimension: int, metric: str, config: Dict[str, Any]) -> Call:
    body: Dict[str, Any] = {"name": name, "dimension": int(dimension), "metric": metric}
    if config:
        body["config"] = plain(config)
    return Call("POST", "/v1/collections", body, idempotent=False)


def query_body(k: int, ef: Optional[int], exact: bool, filter: Optional[dict], include: Optional[Iterable[str]],
               text: Optional[str], text_match: Optional[str], fusion: Optional[str], vector_weight: Optional[float],
               rerank: Optional[int], nprobe: Optional[int], as_of_: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {"k": int(k)}
    for key, value in (("ef", ef), ("rerank", rerank), ("nprobe", nprobe)):
        if value is not None:
            body[key] = int(value)
    if exact:
        body["exact"] = True
    if filter is not None:
        body["filter"] = plain(filter)
    if include:
        body["include"] = list(include)
        if "vectors" in body["include"]:
            body["vector_encoding"] = "base64"
    for key, value in (("text", text), ("text_match", text_match), ("fusion", fusion)):
        if value is not None:
            body[key] = value
    if vector_weight is not None:
        body["vector_weight"] = float(vector_weight)
    if as_of_ is not None:
        body["as_of"] = as_of(as_of_)
    return body


def query(path: str, vector: Any, body: Dict[str, Any]) -> Call:
    if vector is not None:
        body = dict(body, vector_b64=vector_b64(vector))
    return Call("POST", path + "/query", body, parse=lambda a: hits(a["results"]))


def query_batches(path: str, vectors: Any, body: Dict[str, Any]) -> List[Call]:
    """A batch of query vectors in requests within the server's limits (vectors per request, hits per answer)."""
    encoded = matrix_b64(as_matrix(vectors))
    per_call = max(1, min(MAX_BATCH, MAX_RESULTS // max(1, int(body["k"]))))
    return [Call("POST", path + "/query", dict(body, vectors_b64=encoded[i:i + per_call]),
                 parse=lambda a: [hits(r) for r in a["results"]])
            for i in range(0, len(encoded), per_call)]


def get_batches(path: str, ids: Sequence[Any], include_vectors: bool, as_of_: Any, dimension: int) -> List[Call]:
    wanted = ids_list(ids)
    per_call = MAX_IDS if not include_vectors else max(1, min(MAX_IDS, MAX_RETURNED_FLOATS // max(1, dimension)))
    calls = []
    for i in range(0, len(wanted), per_call):
        body: Dict[str, Any] = {"ids": wanted[i:i + per_call], "include_vectors": include_vectors,
                                "vector_encoding": "base64"}
        if as_of_ is not None:
            body["as_of"] = as_of(as_of_)
        calls.append(Call("POST", path + "/get", body, parse=lambda a: documents(a["documents"])))
    return calls


def scan_page(path: str, filter: Optional[dict], after: Any, page_size: int, include_vectors: bool,
              as_of_: Any) -> Call:
    body: Dict[str, Any] = {"limit": int(page_size), "include_vectors": include_vectors, "vector_encoding": "base64"}
    if as_of_ is not None:
        body["as_of"] = as_of(as_of_)
    if filter is not None:
        body["filter"] = plain(filter)
    if after is not None:
        body["after"] = after
    return Call("POST", path + "/scan", body, parse=lambda a: (documents(a["documents"]), a.get("next")))


def count(path: str, filter: Optional[dict], as_of_: Any) -> Call:
    body: Dict[str, Any] = {}
    if filter is not None:
        body["filter"] = plain(filter)
    if as_of_ is not None:
        body["as_of"] = as_of(as_of_)
    return Call("POST", path + "/count", body, parse=lambda a: int(a["count"]))


def facets(path: str, attribute: str, filter: Optional[dict], limit: int, as_of_: Any) -> Call:
    body: Dict[str, Any] = {"attribute": attribute, "limit": int(limit)}
    if filter is not None:
        body["filter"] = plain(filter)
    if as_of_ is not None:
        body["as_of"] = as_of(as_of_)
    return Call("POST", path + "/facets", body, parse=lambda a: a["facets"])


def delete(path: str, ids: Optional[Sequence[Any]], filter: Optional[dict]) -> List[Call]:
    """By ids (in requests of at most the server's id limit; safe to repeat) or by filter (one request, not repeated:
    a retry could delete documents written since)."""
    if (ids is None) == (filter is None):
        raise ValueError("give exactly one of ids or filter")
    if filter is not None:
        return [Call("POST", path + "/delete", {"filter": plain(filter)}, idempotent=False,
                     parse=lambda a: int(a["deleted"]))]
    wanted = ids_list(ids)
    return [Call("POST", path + "/delete", {"ids": wanted[i:i + MAX_IDS]}, parse=lambda a: int(a["deleted"]))
            for i in range(0, len(wanted), MAX_IDS)]


def restore(path: str, version: Optional[int], time: Any, sequence: Optional[int]) -> Call:
    if sequence is not None:
        if version is not None or time is not None:
            raise ValueError("give one of version, time and sequence")
        body: Dict[str, Any] = {"sequence": int(sequence)}
    else:
        body = version_choice(version, time)
    return Call("POST", path + "/restore", body, idempotent=False, parse=lambda a: int(a["version"]))


def create_snapshot(path: str, name: str, version: Optional[int]) -> Call:
    body: Dict[str, Any] = {"name": name}
    if version is not None:
        body["version"] = int(version)
    return Call("POST", path + "/snapshots", body, idempotent=False)


def branch(path: str, name: str, version: Optional[int], time: Any) -> Call:
    body: Dict[str, Any] = {"name": name}
    if version is not None or time is not None:
        body.update(version_choice(version, time))
    return Call("POST", path + "/branch", body, idempotent=False)

