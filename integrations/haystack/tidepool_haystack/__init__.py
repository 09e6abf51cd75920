"""Haystack 2 integration of the Tidepool vector database."""
from .document_store import TidepoolDocumentStore
from .filters import convert_filters
from .retrievers import TidepoolBM25Retriever, TidepoolEmbeddingRetriever

__version__ = "0.2.0"
__all__ = ["TidepoolDocumentStore", "TidepoolEmbeddingRetriever", "TidepoolBM25Retriever", "convert_filters",
           "__version__"]
