"""Haystack components that retrieve from a :class:`TidepoolDocumentStore`: by embedding, and by BM25."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import Document
from haystack.document_stores.types import FilterPolicy
from haystack.document_stores.types.filter_policy import apply_filter_policy

from .document_store import TidepoolDocumentStore


def _policy(p: Union[str, FilterPolicy]) -> FilterPolicy:
    return p if isinstance(p, FilterPolicy) else FilterPolicy.from_str(p)


@component
class TidepoolEmbeddingRetriever:
    """The documents nearest to a query embedding (never those without an embedding)."""

    def __init__(self, document_store: TidepoolDocumentStore, filters: Optional[Dict[str, Any]] = None,
                 top_k: int = 10, filter_policy: Union[str, FilterPolicy] = FilterPolicy.REPLACE,
                 return_embedding: bool = False):
        if not isinstance(document_store, TidepoolDocumentStore):
            raise ValueError("document_store must be a TidepoolDocumentStore")
        self.document_store, self.filters, self.top_k = document_store, filters or {}, top_k
        self.filter_policy, self.return_embedding = _policy(filter_policy), return_embedding

    def to_dict(self) -> Dict[str, Any]:
        return default_to_dict(self, document_store=self.document_store.to_dict(), filters=self.filters,
                               top_k=self.top_k, filter_policy=self.filter_policy.value,
                               return_embedding=self.return_embedding)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TidepoolEmbeddingRetriever":
        params = data["init_parameters"]
        params["document_store"] = TidepoolDocumentStore.from_dict(params["document_store"])
        return default_from_dict(cls, data)

    @component.output_types(documents=List[Document])
    def run(self, query_embedding: List[float], filters: Optional[Dict[str, Any]] = None,
            top_k: Optional[int] = None) -> Dict[str, List[Document]]:
        docs = self.document_store._embedding_retrieval(
            query_embedding, filters=apply_filter_policy(self.filter_policy, self.filters, filters),
            top_k=top_k or self.top_k, return_embedding=self.return_embedding)
        return {"documents": docs}


@component
class TidepoolBM25Retriever:
    """The documents whose ``content`` best matches a text query (BM25), with or without embeddings."""

    def __init__(self, document_store: TidepoolDocumentStore, filters: Optional[Dict[str, Any]] = None,
                 top_k: int = 10, filter_policy: Union[str, FilterPolicy] = FilterPolicy.REPLACE):
        if not isinstance(document_store, TidepoolDocumentStore):
            raise ValueError("document_store must be a TidepoolDocumentStore")
        self.document_store, self.filters, self.top_k = document_store, filters or {}, top_k
        self.filter_policy = _policy(filter_policy)

    def to_dict(self) -> Dict[str, Any]:
        return default_to_dict(self, document_store=self.document_store.to_dict(), filters=self.filters,
                               top_k=self.top_k, filter_policy=self.filter_policy.value)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TidepoolBM25Retriever":
        params = data["init_parameters"]
        params["document_store"] = TidepoolDocumentStore.from_dict(params["document_store"])
        return default_from_dict(cls, data)

    @component.output_types(documents=List[Document])
    def run(self, query: str, filters: Optional[Dict[str, Any]] = None,
            top_k: Optional[int] = None) -> Dict[str, List[Document]]:
        docs = self.document_store._bm25_retrieval(
            query, filters=apply_filter_policy(self.filter_policy, self.filters, filters), top_k=top_k or self.top_k)
        return {"documents": docs}
