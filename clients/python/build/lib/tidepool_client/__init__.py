"""The Python client of the Tidepool vector database (docs/HTTP.md, clients/python/README.md).

    import numpy as np
    from tidepool_client import Client

    with Client("http://127.0.0.1:8080", api_key="dev-secret-key") as client:
        docs = client.create_collection("docs", dimension=384, metric="cosine", text_fields=["body"])
        docs.upsert(ids=np.arange(100_000), vectors=embeddings, attributes=rows, progress=True)
        hits = docs.query(vector, k=10, filter={"year": {"gte": 2024}}, include=["attributes"])
        hits[0].id, hits[0].distance, hits.to_pandas()

:class:`AsyncClient` is the same API for asyncio.
"""
from ._version import __version__
from .aio import AsyncClient, AsyncCollection
from .client import Client, Collection
from .errors import (AuthenticationError, BadRequestError, CollectionExistsError, CollectionNotFoundError,
                     ConflictError, DeadlineExceededError, DimensionMismatchError, NotFoundError,
                     PayloadTooLargeError, PermissionDeniedError, RateLimitedError, ServerError,
                     TidepoolConnectionError, TidepoolError, UnavailableError)
from .results import Document, Documents, Hit, Hits

__all__ = [
    "__version__", "Client", "Collection", "AsyncClient", "AsyncCollection", "Hit", "Hits", "Document", "Documents",
    "TidepoolError", "BadRequestError", "DimensionMismatchError", "AuthenticationError", "PermissionDeniedError",
    "NotFoundError", "CollectionNotFoundError", "ConflictError", "CollectionExistsError", "PayloadTooLargeError",
    "RateLimitedError", "UnavailableError", "DeadlineExceededError", "ServerError", "TidepoolConnectionError",
]
