"""A Haystack 2 ``DocumentStore`` over a Tidepool collection (a ``tidepool serve`` reached by the Python client).

A Haystack document is one Tidepool document: its id, its embedding (documents without one are stored
too, and found by filters and BM25 but never by embedding search), its text in the attribute
``content`` (indexed for BM25), each ``meta`` key in the attribute ``meta.<key>``, and a blob in
``blob.data`` (base64) and ``blob.mime_type``.
"""
from __future__ import annotations

import base64
import logging
from typing import Any, Dict, List, Optional

from haystack import default_from_dict, default_to_dict
from haystack.dataclasses import ByteStream, Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.utils import Secret, deserialize_secrets_inplace

from tidepool_client import BadRequestError, Client, CollectionExistsError, CollectionNotFoundError

from .filters import convert_filters

logger = logging.getLogger(__name__)

_METRICS = {"dot_product": "ip", "cosine": "cosine", "l2": "l2"}
META = "meta."


class TidepoolDocumentStore:
    """Documents in a Tidepool collection, created on first use with ``embedding_dim`` and ``similarity``
    (``dot_product``, the default, ``cosine`` or ``l2``)."""

    def __init__(self, url: Optional[str] = None, collection_name: str = "haystack", embedding_dim: int = 768,
                 similarity: str = "dot_product",
                 api_key: Secret = Secret.from_env_var("TIDEPOOL_API_KEY", strict=False),
                 collection_config: Optional[Dict[str, Any]] = None, timeout: float = 30.0):
        if similarity not in _METRICS:
            raise ValueError(f"similarity must be one of {sorted(_METRICS)}, got {similarity!r}")
        self.url, self.collection_name, self.embedding_dim = url, collection_name, int(embedding_dim)
        self.similarity, self.api_key, self.timeout = similarity, api_key, timeout
        self.collection_config = dict(collection_config or {})
        self._client: Optional[Client] = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url, self.api_key.resolve_value() if self.api_key else None, timeout=self.timeout)
            self._ensure_collection()
        return self._client

    @property
    def collection(self) -> Any:
        return self.client.collection(self.collection_name)

    def _ensure_collection(self) -> None:
        assert self._client is not None
        config = dict(self.collection_config)
        config.setdefault("text_fields", ["content"])
        try:
            self._client.create_collection(self.collection_name, self.embedding_dim, _METRICS[self.similarity], **config)
        except CollectionExistsError:
            info = self._client.collection(self.collection_name).describe()
            if int(info["dimension"]) != self.embedding_dim:
                raise ValueError(f"collection '{self.collection_name}' has dimension {info['dimension']}, "
                                 f"not embedding_dim {self.embedding_dim}") from None

    def to_dict(self) -> Dict[str, Any]:
        return default_to_dict(self, url=self.url, collection_name=self.collection_name,
                               embedding_dim=self.embedding_dim, similarity=self.similarity,
                               api_key=self.api_key.to_dict() if self.api_key else None,
                               collection_config=self.collection_config, timeout=self.timeout)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TidepoolDocumentStore":
        deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return default_from_dict(cls, data)

    # Reading.

    def count_documents(self) -> int:
        return self.collection.count

    def filter_documents(self, filters: Optional[Dict[str, Any]] = None) -> List[Document]:
        """Every document that ``filters`` (Haystack's syntax) admits, in id order."""
        tidepool_filter = convert_filters(filters) if filters else True
        if tidepool_filter is False:
            return []
        try:
            return [self._from_tidepool(d) for d in self.collection.scan(
                filter=None if tidepool_filter is True else tidepool_filter, include_vectors=True)]
        except BadRequestError as e:
            raise FilterError(f"Tidepool refused the filter {filters}: {e.message}") from e

    def get_documents_by_id(self, document_ids: List[str]) -> List[Document]:
        return [self._from_tidepool(d) for d in self.collection.get(list(document_ids))]

    # Writing.

    def write_documents(self, documents: List[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        """Writes documents; ``NONE`` and ``FAIL`` raise ``DuplicateDocumentError`` when an id exists (in the store
        or twice in the batch) and write nothing, ``SKIP`` writes only new ids, ``OVERWRITE`` replaces.
        Returns how many were written."""
        if not isinstance(documents, list) or not all(isinstance(d, Document) for d in documents):
            raise ValueError("write_documents takes a list of Document objects")
        if not documents:
            return 0
        ids = [d.id for d in documents]
        if policy in (DuplicatePolicy.NONE, DuplicatePolicy.FAIL):
            seen = set()
            repeated = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
            existing = {str(d.id) for d in self.collection.get(ids, include_vectors=False)}
            if repeated or existing:
                raise DuplicateDocumentError(f"documents with these ids exist: {sorted(set(repeated) | existing)[:10]}")
        elif policy == DuplicatePolicy.SKIP:
            existing = {str(d.id) for d in self.collection.get(ids, include_vectors=False)}
            unique: Dict[str, Document] = {}
            for d in documents:
                if d.id not in existing and d.id not in unique:
                    unique[d.id] = d
            documents = list(unique.values())
            if not documents:
                return 0
        vectors = [d.embedding for d in documents]
        attributes = [self._attributes(d) for d in documents]
        return self.collection.upsert([d.id for d in documents], vectors, attributes)

    def delete_documents(self, document_ids: List[str]) -> None:
        if document_ids:
            self.collection.delete(ids=list(document_ids))

    def delete_all_documents(self) -> None:
        """Drops and recreates the collection."""
        try:
            self.client.delete_collection(self.collection_name)
        except CollectionNotFoundError:
            pass
        self._ensure_collection()

    # Retrieval (used by the retrievers).

    def _embedding_retrieval(self, query_embedding: List[float], filters: Optional[Dict[str, Any]] = None,
                             top_k: int = 10, return_embedding: bool = False) -> List[Document]:
        """The ``top_k`` documents nearest to the embedding; ``score`` is the similarity (dot product, cosine
        similarity, or negative squared L2 distance), larger is closer."""
        tidepool_filter = convert_filters(filters) if filters else True
        if tidepool_filter is False:
            return []
        include = ["attributes", "vectors"] if return_embedding else ["attributes"]
        try:
            hits = self.collection.query(query_embedding, k=top_k, include=include,
                                         filter=None if tidepool_filter is True else tidepool_filter)
        except BadRequestError as e:
            raise FilterError(f"Tidepool refused the filter {filters}: {e.message}") from e
        out = []
        for h in hits:
            score = 1.0 - h.distance if self.similarity == "cosine" else -h.distance
            out.append(self._from_tidepool(h, score=float(score)))
        return out

    def _bm25_retrieval(self, query: str, filters: Optional[Dict[str, Any]] = None, top_k: int = 10) -> List[Document]:
        """The ``top_k`` documents by BM25 over ``content``; ``score`` is the BM25 score."""
        tidepool_filter = convert_filters(filters) if filters else True
        if tidepool_filter is False or not query.strip():
            return []
        hits = self.collection.query(text=query, k=top_k, include=["attributes"],
                                     filter=None if tidepool_filter is True else tidepool_filter)
        return [self._from_tidepool(h, score=float(h.score)) for h in hits]

    # Mapping.

    @staticmethod
    def _attributes(d: Document) -> Dict[str, Any]:
        if d.sparse_embedding is not None:
            logger.warning("document %s: sparse embeddings are not stored by Tidepool; dropped", d.id)
        attrs: Dict[str, Any] = {META + k: v for k, v in (d.meta or {}).items()}
        if d.content is not None:
            attrs["content"] = d.content
        if d.blob is not None:
            attrs["blob.data"] = base64.b64encode(d.blob.data).decode("ascii")
            if d.blob.mime_type:
                attrs["blob.mime_type"] = d.blob.mime_type
        return attrs

    @staticmethod
    def _from_tidepool(d: Any, score: Optional[float] = None) -> Document:
        attrs = d.attributes or {}
        meta = {k[len(META):]: v for k, v in attrs.items() if k.startswith(META)}
        blob = None
        if "blob.data" in attrs:
            blob = ByteStream(data=base64.b64decode(attrs["blob.data"]), mime_type=attrs.get("blob.mime_type"))
        embedding = d.vector.tolist() if getattr(d, "vector", None) is not None else None
        return Document(id=str(d.id), content=attrs.get("content"), meta=meta, blob=blob, embedding=embedding,
                        score=score)
