"""A LlamaIndex vector store over a Tidepool collection (a ``tidepool serve`` reached by the Python client).

A node is one Tidepool document: its id (also kept in the attribute ``node_id``, so that a search can be
limited to given nodes through an ordinary filter), its embedding, its text in the attribute ``text``
(indexed for BM25, which ``TEXT_SEARCH`` and ``HYBRID`` queries use), and the rest of the node as
LlamaIndex stores it (flat metadata, ``_node_content``, ``ref_doc_id`` …) as attributes.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (BasePydanticVectorStore, FilterCondition, FilterOperator,
                                                  MetadataFilter, MetadataFilters, VectorStoreQuery,
                                                  VectorStoreQueryMode, VectorStoreQueryResult)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from tidepool_client import AsyncClient, BadRequestError, Client, CollectionNotFoundError

_METRICS = {"cosine", "l2", "ip"}
NODE_ID = "node_id"
TEXT = "text"


def _unknown_attribute(e: BadRequestError) -> bool:
    """The engine refuses filters on attributes no document has ever had; to a framework that is no match."""
    return "unknown attribute" in e.message


def _condition(f: MetadataFilter) -> Dict[str, Any]:
    op, key, value = f.operator, f.key, f.value
    simple = {FilterOperator.EQ: "eq", FilterOperator.NE: "ne", FilterOperator.GT: "gt", FilterOperator.GTE: "gte",
              FilterOperator.LT: "lt", FilterOperator.LTE: "lte", FilterOperator.IN: "in", FilterOperator.NIN: "notIn"}
    if op in simple:
        return {key: {simple[op]: value}}

    def element(v: Any) -> Dict[str, Any]:
        # One element of an array: `contains` for strings; numbers match any element by `eq`.
        return {key: {"contains": v}} if isinstance(v, str) else {key: {"eq": v}}

    if op == FilterOperator.CONTAINS:
        return element(value)
    if op in (FilterOperator.ANY, FilterOperator.ALL):
        parts = [element(v) for v in value]
        return parts[0] if len(parts) == 1 else {"or" if op == FilterOperator.ANY else "and": parts}
    if op == FilterOperator.IS_EMPTY:
        return {key: {"exists": False}}
    raise NotImplementedError(f"filter operator {op.value!r} is not supported by Tidepool (docs/FILTERS.md)")


def to_tidepool_filter(filters: MetadataFilters) -> Optional[Dict[str, Any]]:
    """LlamaIndex ``MetadataFilters`` (nested, with and / or / not) as a Tidepool filter; None when empty."""
    parts = []
    for f in filters.filters:
        part = to_tidepool_filter(f) if isinstance(f, MetadataFilters) else _condition(f)
        if part is not None:
            parts.append(part)
    if not parts:
        return None
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        return {"not": parts[0] if len(parts) == 1 else {"and": parts}}
    if len(parts) == 1:
        return parts[0]
    return {"or" if condition == FilterCondition.OR else "and": parts}


class TidepoolVectorStore(BasePydanticVectorStore):
    """LlamaIndex nodes in one Tidepool collection, created on the first write with the embeddings' dimension.

    Args:
        collection_name: the collection.
        url, api_key: the server (default ``$TIDEPOOL_URL``, ``$TIDEPOOL_API_KEY``).
        metric: ``cosine`` (default), ``l2`` or ``ip``, for a new collection.
        collection_config: settings for a new collection (``m``, ``ef_search``, ``quantization`` …).
    """

    stores_text: bool = True
    flat_metadata: bool = False  # arrays and nested objects are attributes too (docs/FILTERS.md)
    collection_name: str
    url: Optional[str] = None
    metric: str = "cosine"
    collection_config: Dict[str, Any] = {}

    _client: Client = PrivateAttr()
    _api_key: Optional[str] = PrivateAttr()

    def __init__(self, collection_name: str = "llama_index", url: Optional[str] = None, api_key: Optional[str] = None,
                 metric: str = "cosine", collection_config: Optional[Dict[str, Any]] = None, **kwargs: Any):
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
        super().__init__(collection_name=collection_name, url=url, metric=metric,
                         collection_config=dict(collection_config or {}), **kwargs)
        self._api_key = api_key
        self._client = Client(url, api_key)

    @classmethod
    def class_name(cls) -> str:
        return "TidepoolVectorStore"

    @property
    def client(self) -> Client:
        return self._client

    @property
    def _collection(self) -> Any:
        return self._client.collection(self.collection_name)

    def _create(self) -> Dict[str, Any]:
        config = dict(self.collection_config)
        config.setdefault("text_fields", [TEXT])
        return {"metric": self.metric, "config": config}

    # Writing.

    def _rows(self, nodes: Sequence[BaseNode]) -> tuple:
        ids, vectors, attributes = [], [], []
        for node in nodes:
            attrs = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            attrs = {k: v for k, v in attrs.items() if v is not None}
            attrs[NODE_ID] = node.node_id
            attrs[TEXT] = node.get_content(metadata_mode="none") or ""
            ids.append(node.node_id)
            vectors.append(node.embedding)
            attributes.append(attrs)
        return ids, vectors, attributes

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        """Upserts nodes (an existing id is replaced); nodes without an embedding are stored too, found by
        filters and text search only."""
        if not nodes:
            return []
        ids, vectors, attributes = self._rows(nodes)
        self._collection.upsert(ids, vectors, attributes, create=self._create(), **kwargs)
        return ids

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        if not nodes:
            return []
        ids, vectors, attributes = self._rows(nodes)
        async with AsyncClient(self._client.url, self._api_key) as c:
            await c.collection(self.collection_name).upsert(ids, vectors, attributes, create=self._create(), **kwargs)
        return ids

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the source document ``ref_doc_id``."""
        self._delete_where({"ref_doc_id": ref_doc_id})

    def delete_nodes(self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None,
                     **delete_kwargs: Any) -> None:
        """Deletes these nodes, those that ``filters`` admit, or (both given) those of the nodes that it admits."""
        if node_ids is not None and filters is None:
            if node_ids:
                try:
                    self._collection.delete(ids=list(node_ids))
                except CollectionNotFoundError:
                    pass
            return
        condition = self._filter(filters, node_ids)
        if condition is not None:
            self._delete_where(condition)

    def _delete_where(self, condition: Dict[str, Any]) -> None:
        try:
            self._collection.delete(filter=condition)
        except CollectionNotFoundError:
            pass
        except BadRequestError as e:
            if not _unknown_attribute(e):
                raise

    def clear(self) -> None:
        """Drops the collection (the next write creates it again)."""
        try:
            self._client.delete_collection(self.collection_name)
        except CollectionNotFoundError:
            pass

    # Reading.

    @staticmethod
    def _filter(filters: Optional[MetadataFilters], node_ids: Optional[Sequence[str]]) -> Optional[Dict[str, Any]]:
        parts = []
        if filters is not None:
            converted = to_tidepool_filter(filters)
            if converted is not None:
                parts.append(converted)
        if node_ids:  # an empty list means no restriction, as LlamaIndex's own indexes pass it
            parts.append({NODE_ID: {"in": list(node_ids)}})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"and": parts}

    def _node(self, doc: Any) -> BaseNode:
        attrs = dict(doc.attributes or {})
        text = attrs.pop(TEXT, "")
        attrs.pop(NODE_ID, None)
        node = metadata_dict_to_node(attrs, text=text)
        if getattr(doc, "vector", None) is not None:
            node.embedding = doc.vector.tolist()
        return node

    def get_nodes(self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None,
                  **kwargs: Any) -> List[BaseNode]:
        """Nodes by id (in the order given), or those ``filters`` admit (in id order), or both."""
        try:
            if filters is None and node_ids is not None:
                found = {str(d.id): d for d in self._collection.get(list(node_ids))}
                return [self._node(found[i]) for i in node_ids if i in found]
            condition = self._filter(filters, node_ids)
            return [self._node(d) for d in self._collection.scan(filter=condition, include_vectors=True)]
        except CollectionNotFoundError:
            return []
        except BadRequestError as e:
            if _unknown_attribute(e):
                return []
            raise

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """DEFAULT (vector), MMR, TEXT_SEARCH (BM25 over the text) or HYBRID (both, fused with ``alpha`` as the
        vector weight), under ``filters`` and limited to ``node_ids`` / ``doc_ids`` when given. Similarities are
        larger-is-closer: 1 − cosine distance, the dot product, or the negative squared L2 distance."""
        condition = self._filter(query.filters, query.node_ids)
        if query.doc_ids:
            doc_filter = {"ref_doc_id": {"in": list(query.doc_ids)}}
            condition = doc_filter if condition is None else {"and": [condition, doc_filter]}
        k = max(1, query.similarity_top_k or 1)
        mode = query.mode
        args: Dict[str, Any] = {"k": k, "filter": condition, "include": ["attributes"]}
        try:
            if mode == VectorStoreQueryMode.TEXT_SEARCH:
                hits = self._collection.query(text=query.query_str or "", **args)
                return self._result(hits, [h.score for h in hits])
            if query.query_embedding is None:
                raise ValueError(f"a {mode.value} query needs query_embedding")
            if mode == VectorStoreQueryMode.HYBRID and query.query_str:
                alpha = 0.5 if query.alpha is None else float(query.alpha)
                hits = self._collection.query(query.query_embedding, text=query.query_str, fusion="weighted",
                                              vector_weight=alpha, **args)
                return self._result(hits, [h.score for h in hits])
            if mode == VectorStoreQueryMode.MMR:
                fetch = max(k, int(kwargs.get("mmr_prefetch_k", 4 * k)))
                hits = self._collection.query(query.query_embedding, **dict(args, k=fetch,
                                                                             include=["attributes", "vectors"]))
                if not hits:
                    return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
                sims, chosen = get_top_k_mmr_embeddings(
                    query.query_embedding, [h.vector.tolist() for h in hits], similarity_top_k=k,
                    embedding_ids=list(range(len(hits))), mmr_threshold=query.mmr_threshold)
                return self._result([hits[i] for i in chosen], list(sims))
            hits = self._collection.query(query.query_embedding, **args)
            return self._result(hits, [self._similarity(h.distance) for h in hits])
        except CollectionNotFoundError:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        except BadRequestError as e:
            if _unknown_attribute(e):
                return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
            raise

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return self.query(query, **kwargs)

    def _similarity(self, distance: float) -> float:
        return 1.0 - distance if self.metric == "cosine" else -distance

    def _result(self, hits: Any, similarities: List[float]) -> VectorStoreQueryResult:
        nodes = [self._node(h) for h in hits]
        return VectorStoreQueryResult(nodes=nodes, similarities=[float(s) for s in similarities],
                                      ids=[str(h.id) for h in hits])


__all__ = ["TidepoolVectorStore", "to_tidepool_filter"]
