"""A LangChain ``VectorStore`` over a Tidepool collection (a ``tidepool serve`` reached by the Python client).

Each LangChain document is one Tidepool document: its id (a string; a UUID is made when none is given),
its embedding, its metadata as attributes, and its text in the attribute ``text_key`` (``page_content``),
which the collection also indexes for full-text (BM25) search. Filters use Tidepool's JSON filter syntax
(docs/FILTERS.md), e.g. ``{"year": {"gte": 2020}, "lang": "en"}``.
"""
from __future__ import annotations

import asyncio
import math
import uuid
import weakref
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Type

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from tidepool_client import AsyncClient, Client, CollectionExistsError, CollectionNotFoundError
from tidepool_client.results import Hit

_METRICS = {"cosine", "l2", "ip"}


class TidepoolVectorStore(VectorStore):
    """LangChain's vector store interface over one Tidepool collection.

    Args:
        embedding: the model that embeds texts and queries.
        collection_name: the collection; created on the first write with the embedding's dimension.
        url, api_key: the server (default ``$TIDEPOOL_URL``, ``$TIDEPOOL_API_KEY``); or pass ``client``.
        metric: ``cosine`` (default), ``l2`` or ``ip``, used when the collection is created.
        text_key: the attribute holding the document's text.
        collection_config: settings for a new collection (``m``, ``ef_search``, ``quantization`` …).
    """

    def __init__(self, embedding: Embeddings, collection_name: str = "langchain", *, url: Optional[str] = None,
                 api_key: Optional[str] = None, client: Optional[Client] = None, metric: str = "cosine",
                 text_key: str = "page_content", collection_config: Optional[dict] = None):
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
        self._embedding = embedding
        self.collection_name = collection_name
        self.client = client or Client(url, api_key)
        self._url, self._api_key = self.client.url, api_key
        self.collection = self.client.collection(collection_name)
        self.metric, self.text_key = metric, text_key
        self.collection_config = dict(collection_config or {})
        self._async: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient]" = weakref.WeakKeyDictionary()

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    # Writing.

    def _create_body(self, dimension: int) -> dict:
        config = dict(self.collection_config)
        config.setdefault("text_fields", [self.text_key])
        return {"metric": self.metric, "config": config}

    def _rows(self, texts: List[str], metadatas: Optional[List[dict]], ids: Optional[Sequence[Optional[str]]]
              ) -> Tuple[List[str], List[dict]]:
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(metadatas)} metadatas")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
        out_ids = [str(i) if i else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        attributes = []
        for text, meta in zip(texts, metadatas or [{}] * len(texts)):
            if self.text_key in (meta or {}):
                raise ValueError(f"metadata may not use the key {self.text_key!r}: it holds the document's text")
            attributes.append({**(meta or {}), self.text_key: text})
        return out_ids, attributes

    def add_texts(self, texts: Iterable[str], metadatas: Optional[List[dict]] = None, *,
                  ids: Optional[Sequence[Optional[str]]] = None, **kwargs: Any) -> List[str]:
        """Embeds and upserts texts (an existing id is replaced); returns the ids. ``batch_size``, ``parallel``
        and ``progress`` go to the client's bulk upsert."""
        texts = list(texts)
        if not texts:
            return []
        out_ids, attributes = self._rows(texts, metadatas, ids)
        vectors = np.asarray(self._embedding.embed_documents(texts), dtype=np.float32)
        self.collection.upsert(out_ids, vectors, attributes, create=self._create_body(vectors.shape[1]), **kwargs)
        return out_ids

    async def aadd_texts(self, texts: Iterable[str], metadatas: Optional[List[dict]] = None, *,
                         ids: Optional[Sequence[Optional[str]]] = None, **kwargs: Any) -> List[str]:
        texts = list(texts)
        if not texts:
            return []
        out_ids, attributes = self._rows(texts, metadatas, ids)
        vectors = np.asarray(await self._embedding.aembed_documents(texts), dtype=np.float32)
        await self._acollection().upsert(out_ids, vectors, attributes, create=self._create_body(vectors.shape[1]),
                                         **kwargs)
        return out_ids

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Deletes these ids (missing ones are ignored), or with ``filter=`` the matching documents, or with
        neither the whole collection."""
        try:
            if ids is not None:
                if ids:
                    self.collection.delete(ids=list(ids))
            elif kwargs.get("filter") is not None:
                self.collection.delete(filter=kwargs["filter"])
            else:
                self.client.delete_collection(self.collection_name)
        except CollectionNotFoundError:
            pass
        return True

    async def adelete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        try:
            if ids is not None:
                if ids:
                    await self._acollection().delete(ids=list(ids))
            elif kwargs.get("filter") is not None:
                await self._acollection().delete(filter=kwargs["filter"])
            else:
                await self._aclient().delete_collection(self.collection_name)
        except CollectionNotFoundError:
            pass
        return True

    # Reading.

    def _document(self, id_: Any, attributes: Optional[dict]) -> Document:
        meta = dict(attributes or {})
        text = meta.pop(self.text_key, "")
        return Document(page_content=text if isinstance(text, str) else str(text), metadata=meta, id=str(id_))

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        """The documents with these ids that exist, in the order asked."""
        try:
            found = {str(d.id): d for d in self.collection.get(list(ids), include_vectors=False)}
        except CollectionNotFoundError:
            return []
        return [self._document(found[i].id, found[i].attributes) for i in ids if i in found]

    async def aget_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        try:
            docs = await self._acollection().get(list(ids), include_vectors=False)
        except CollectionNotFoundError:
            return []
        found = {str(d.id): d for d in docs}
        return [self._document(found[i].id, found[i].attributes) for i in ids if i in found]

    def _query_args(self, k: int, filter: Optional[dict], kwargs: dict, vectors: bool = False) -> dict:
        args = {"k": k, "filter": filter, "include": ["attributes", "vectors"] if vectors else ["attributes"]}
        for key in ("ef", "exact", "rerank", "nprobe", "as_of"):
            if key in kwargs:
                args[key] = kwargs[key]
        return args

    def _pairs(self, hits: List[Hit]) -> List[Tuple[Document, float]]:
        return [(self._document(h.id, h.attributes), float(h.distance if h.distance is not None else 0.0))
                for h in hits]

    def similarity_search_by_vector_with_score(self, embedding: List[float], k: int = 4,
                                               filter: Optional[dict] = None, **kwargs: Any
                                               ) -> List[Tuple[Document, float]]:
        """Documents and their distances in the collection's metric (smaller is closer)."""
        try:
            return self._pairs(self.collection.query(embedding, **self._query_args(k, filter, kwargs)))
        except CollectionNotFoundError:
            return []

    async def asimilarity_search_by_vector_with_score(self, embedding: List[float], k: int = 4,
                                                      filter: Optional[dict] = None, **kwargs: Any
                                                      ) -> List[Tuple[Document, float]]:
        try:
            return self._pairs(await self._acollection().query(embedding, **self._query_args(k, filter, kwargs)))
        except CollectionNotFoundError:
            return []

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Optional[dict] = None,
                                     **kwargs: Any) -> List[Tuple[Document, float]]:
        return self.similarity_search_by_vector_with_score(self._embedding.embed_query(query), k, filter, **kwargs)

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: Optional[dict] = None,
                                            **kwargs: Any) -> List[Tuple[Document, float]]:
        vector = await self._embedding.aembed_query(query)
        return await self.asimilarity_search_by_vector_with_score(vector, k, filter, **kwargs)

    def similarity_search(self, query: str, k: int = 4, filter: Optional[dict] = None,
                          **kwargs: Any) -> List[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, filter: Optional[dict] = None,
                                 **kwargs: Any) -> List[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector(self, embedding: List[float], k: int = 4, filter: Optional[dict] = None,
                                    **kwargs: Any) -> List[Document]:
        return [d for d, _ in self.similarity_search_by_vector_with_score(embedding, k, filter, **kwargs)]

    async def asimilarity_search_by_vector(self, embedding: List[float], k: int = 4, filter: Optional[dict] = None,
                                           **kwargs: Any) -> List[Document]:
        return [d for d, _ in await self.asimilarity_search_by_vector_with_score(embedding, k, filter, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Distances as relevance in [0, 1]: cosine 1 − d; l2 (squared) 1 − √d/√2 for unit vectors;
        ip (−a·b) LangChain's inner-product rule."""
        if self.metric == "cosine":
            return lambda d: 1.0 - d
        if self.metric == "l2":
            return lambda d: 1.0 - math.sqrt(max(d, 0.0)) / math.sqrt(2)
        return self._max_inner_product_relevance_score_fn

    # Maximal marginal relevance: fetch `fetch_k` candidates with their vectors, then pick `k`.

    def _mmr(self, query: List[float], hits: List[Hit], k: int, lambda_mult: float) -> List[Document]:
        if not hits:
            return []
        chosen = maximal_marginal_relevance(np.asarray(query, dtype=np.float32), [h.vector for h in hits],
                                            k=k, lambda_mult=lambda_mult)
        return [self._document(hits[i].id, hits[i].attributes) for i in chosen]

    def max_marginal_relevance_search_by_vector(self, embedding: List[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: Optional[dict] = None,
                                                **kwargs: Any) -> List[Document]:
        try:
            hits = self.collection.query(embedding, **self._query_args(max(k, fetch_k), filter, kwargs, True))
        except CollectionNotFoundError:
            return []
        return self._mmr(embedding, hits, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(self, embedding: List[float], k: int = 4, fetch_k: int = 20,
                                                       lambda_mult: float = 0.5, filter: Optional[dict] = None,
                                                       **kwargs: Any) -> List[Document]:
        try:
            hits = await self._acollection().query(embedding,
                                                   **self._query_args(max(k, fetch_k), filter, kwargs, True))
        except CollectionNotFoundError:
            return []
        return self._mmr(embedding, hits, k, lambda_mult)

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: Optional[dict] = None, **kwargs: Any) -> List[Document]:
        return self.max_marginal_relevance_search_by_vector(self._embedding.embed_query(query), k, fetch_k,
                                                            lambda_mult, filter, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, filter: Optional[dict] = None,
                                             **kwargs: Any) -> List[Document]:
        vector = await self._embedding.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter, **kwargs)

    # Construction.

    @classmethod
    def from_texts(cls: Type["TidepoolVectorStore"], texts: List[str], embedding: Embeddings,
                   metadatas: Optional[List[dict]] = None, *, ids: Optional[List[str]] = None,
                   **kwargs: Any) -> "TidepoolVectorStore":
        """A store over ``collection_name`` (and the other constructor arguments in ``kwargs``) holding ``texts``."""
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(cls: Type["TidepoolVectorStore"], texts: List[str], embedding: Embeddings,
                          metadatas: Optional[List[dict]] = None, *, ids: Optional[List[str]] = None,
                          **kwargs: Any) -> "TidepoolVectorStore":
        store = cls(embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store

    def ensure_collection(self, dimension: int) -> None:
        """Creates the collection now (it is otherwise created by the first write)."""
        try:
            self.client.create_collection(self.collection_name, dimension, self.metric,
                                          **self._create_body(dimension)["config"])
        except CollectionExistsError:
            pass

    # One asyncio client per event loop (an httpx pool belongs to the loop that made it).

    def _aclient(self) -> AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = AsyncClient(self._url, self._api_key or _key_of(self.client))
            self._async[loop] = client
        return client

    def _acollection(self) -> Any:
        return self._aclient().collection(self.collection_name)


def _key_of(client: Client) -> Optional[str]:
    auth = client._http.headers.get("authorization", "")
    return auth[len("Bearer "):] if auth.startswith("Bearer ") else None
