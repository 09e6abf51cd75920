"""LlamaIndex integration of the Tidepool vector database."""
from llama_index.vector_stores.tidepool.base import TidepoolVectorStore, to_tidepool_filter

__version__ = "0.2.0"
__all__ = ["TidepoolVectorStore", "to_tidepool_filter", "__version__"]
