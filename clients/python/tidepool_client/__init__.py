"""A small client for the Tidepool HTTP API (docs/HTTP.md).

    from tidepool_client import Client
    client = Client("http://127.0.0.1:8080", api_key="dev-secret-key")
    docs = client.create_collection("docs", dimension=384, metric="cosine", text_fields=["body"])
    docs.upsert(ids=[1, 2], vectors=np.random.rand(2, 384), attributes=[{"body": "a"}, {"body": "b"}])
    hits = docs.query(vector, k=10, filter={"year": {"gte": 2024}}, include=["attributes"])
"""
from __future__ import annotations

import base64
import datetime
import struct
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import requests

__all__ = ["Client", "Collection", "TidepoolError"]

DocumentID = Union[int, str]
Vector = Any  # a sequence of floats or a 1-D numpy array
AsOf = Any  # a version number, a datetime, or an RFC 3339 string; None: the current state


class TidepoolError(Exception):
    """An error answered by the server: HTTP status, stable code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _encode_vector(v: Vector) -> Dict[str, Any]:
    """numpy arrays travel as base64 little-endian float32; lists as JSON numbers."""
    try:
        import numpy as np  # optional dependency
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v, dtype="<f4").reshape(-1)
            return {"vector_b64": base64.b64encode(a.tobytes()).decode("ascii")}
    except ImportError:
        pass
    values = [float(x) for x in v]
    return {"vector_b64": base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")}


def _vector_list(v: Vector) -> List[float]:
    return [float(x) for x in v]


class Client:
    """A connection to one Tidepool server."""

    def __init__(self, url: str = "http://127.0.0.1:8080", api_key: Optional[str] = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def _call(self, method: str, path: str, body: Optional[dict] = None) -> Dict[str, Any]:
        r = self.session.request(method, self.url + path, json=body, timeout=self.timeout)
        try:
            data = r.json()
        except ValueError:
            data = {}
        if r.status_code >= 400:
            err = data.get("error", {}) if isinstance(data, dict) else {}
            raise TidepoolError(r.status_code, err.get("code", "http_error"), err.get("message", r.text))
        return data

    def health(self) -> bool:
        return self._call("GET", "/health").get("status") == "ok"

    def server_version(self) -> str:
        """The server's release (`tidepool --version`), from /health."""
        return str(self._call("GET", "/health")["version"])

    def list_collections(self) -> List[Dict[str, Any]]:
        return self._call("GET", "/v1/collections")["collections"]

    def create_collection(self, name: str, dimension: int, metric: str = "cosine", **config: Any) -> "Collection":
        """config: m, ef_construction, ef_search, text_fields, memtable_bytes, attribute_types."""
        body: Dict[str, Any] = {"name": name, "dimension": dimension, "metric": metric}
        if config:
            body["config"] = config
        self._call("POST", "/v1/collections", body)
        return Collection(self, name)

    def collection(self, name: str) -> "Collection":
        return Collection(self, name)

    def delete_collection(self, name: str) -> None:
        self._call("DELETE", f"/v1/collections/{name}")


class Collection:
    """One collection on the server."""

    def __init__(self, client: Client, name: str):
        self.client, self.name = client, name
        self._path = f"/v1/collections/{name}"

    def describe(self) -> Dict[str, Any]:
        return self.client._call("GET", self._path)

    @property
    def count(self) -> int:
        return int(self.describe()["count"])

    def update_settings(self, **config: Any) -> Dict[str, Any]:
        """Changes index settings (m, ef_construction, ef_search, quantization="none"|"sq8"|"f16"|"pq"|"rabitq",
        index="auto"|"flat"|"hnsw"|"ivf", nlist, nprobe, pq_subspaces, ivf_min_rows); segments are rebuilt
        in the background. Returns the new description."""
        return self.client._call("PATCH", self._path, {"config": config})

    def upsert(self, ids: Sequence[DocumentID], vectors: Any, attributes: Optional[Sequence[Optional[dict]]] = None,
               create: Optional[dict] = None) -> int:
        """Inserts or replaces documents; `vectors` is a 2-D numpy array or a list of vectors."""
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        if attributes is not None and len(attributes) != len(ids):
            raise ValueError("ids and attributes differ in length")
        docs = []
        for i, (doc_id, vec) in enumerate(zip(ids, vectors)):
            d: Dict[str, Any] = {"id": doc_id if isinstance(doc_id, str) else int(doc_id), **_encode_vector(vec)}
            if attributes is not None and attributes[i]:
                d["attributes"] = attributes[i]
            docs.append(d)
        body: Dict[str, Any] = {"documents": docs}
        if create is not None:
            body["create"] = create
        return int(self.client._call("POST", self._path + "/upsert", body)["upserted"])

    def query(self, vector: Optional[Vector] = None, k: int = 10, *, vectors: Any = None, ef: Optional[int] = None,
              exact: bool = False, filter: Optional[dict] = None, include: Optional[Iterable[str]] = None,
              text: Optional[str] = None, text_match: Optional[str] = None, fusion: Optional[str] = None,
              rerank: Optional[int] = None, nprobe: Optional[int] = None, as_of: AsOf = None) -> Any:
        """Vector, text (BM25) or hybrid (both) search. With `vectors` (a batch), returns one list per vector.
        `as_of` reads a kept version: its number, or a time (a datetime or an RFC 3339 string)."""
        body: Dict[str, Any] = {"k": k}
        if as_of is not None:
            body["as_of"] = _as_of(as_of)
        if vector is not None:
            body["vector"] = _vector_list(vector)
        if vectors is not None:
            # As base64 float32: exact, and no float text for the server to parse.
            body["vectors_b64"] = [_encode_vector(v)["vector_b64"] for v in vectors]
        if ef is not None:
            body["ef"] = ef
        if exact:
            body["exact"] = True
        if filter is not None:
            body["filter"] = filter
        if include:
            body["include"] = list(include)
        if text is not None:
            body["text"] = text
        if text_match is not None:
            body["text_match"] = text_match
        if fusion is not None:
            body["fusion"] = fusion
        if rerank is not None:
            body["rerank"] = rerank
        if nprobe is not None:
            body["nprobe"] = nprobe
        return self.client._call("POST", self._path + "/query", body)["results"]

    def delete(self, ids: Optional[Sequence[DocumentID]] = None, filter: Optional[dict] = None) -> int:
        if (ids is None) == (filter is None):
            raise ValueError("give exactly one of ids or filter")
        body = {"ids": list(ids)} if ids is not None else {"filter": filter}
        return int(self.client._call("POST", self._path + "/delete", body)["deleted"])

    def get(self, ids: Sequence[DocumentID], include_vectors: bool = True, as_of: AsOf = None) -> List[Dict[str, Any]]:
        body: Dict[str, Any] = {"ids": list(ids), "include_vectors": include_vectors}
        if as_of is not None:
            body["as_of"] = _as_of(as_of)
        return self.client._call("POST", self._path + "/get", body)["documents"]

    def scan(self, filter: Optional[dict] = None, page_size: int = 1000, include_vectors: bool = False,
             as_of: AsOf = None) -> Iterator[Dict[str, Any]]:
        """Every matching document in id order, following the server's cursor page by page."""
        after: Optional[DocumentID] = None
        while True:
            body: Dict[str, Any] = {"limit": page_size, "include_vectors": include_vectors}
            if as_of is not None:
                body["as_of"] = _as_of(as_of)
            if filter is not None:
                body["filter"] = filter
            if after is not None:
                body["after"] = after
            page = self.client._call("POST", self._path + "/scan", body)
            yield from page["documents"]
            after = page.get("next")
            if after is None:
                return

    # Versions, snapshots, restores and branches (docs/VERSIONS.md).

    def versions(self) -> Dict[str, Any]:
        """The current version number and the kept versions, oldest first: {"version": n, "versions": [...]}."""
        return self.client._call("GET", self._path + "/versions")

    def restore(self, version: Optional[int] = None, time: Any = None, sequence: Optional[int] = None) -> int:
        """Makes a kept version current again, or with `sequence` the state right after that logged
        operation (`describe()["last_seq"]` at the moment to return to); returns the new version's number."""
        if sequence is not None:
            if version is not None or time is not None:
                raise ValueError("give one of version, time and sequence")
            return int(self.client._call("POST", self._path + "/restore", {"sequence": int(sequence)})["version"])
        return int(self.client._call("POST", self._path + "/restore", _version_choice(version, time))["version"])

    def snapshots(self) -> List[Dict[str, Any]]:
        return self.client._call("GET", self._path + "/snapshots")["snapshots"]

    def create_snapshot(self, name: str, version: Optional[int] = None) -> Dict[str, Any]:
        """Pins a version (default: the current state, flushed first) under `name`."""
        body: Dict[str, Any] = {"name": name}
        if version is not None:
            body["version"] = int(version)
        return self.client._call("POST", self._path + "/snapshots", body)

    def delete_snapshot(self, name: str) -> None:
        self.client._call("DELETE", self._path + "/snapshots/" + name)

    def branch(self, name: str, version: Optional[int] = None, time: Any = None) -> "Collection":
        """Creates collection `name` as a copy-on-write branch of this one (the current state, or a kept version)."""
        body: Dict[str, Any] = {"name": name}
        if version is not None or time is not None:
            body.update(_version_choice(version, time))
        self.client._call("POST", self._path + "/branch", body)
        return Collection(self.client, name)


def _as_of(v: Any) -> Any:
    if isinstance(v, datetime.datetime):
        return _rfc3339(v)
    if isinstance(v, str):
        return v
    return int(v)


def _rfc3339(t: datetime.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _version_choice(version: Optional[int], time: Any) -> Dict[str, Any]:
    if (version is None) == (time is None):
        raise ValueError("give exactly one of version and time")
    if version is not None:
        return {"version": int(version)}
    return {"time": _rfc3339(time) if isinstance(time, datetime.datetime) else str(time)}
