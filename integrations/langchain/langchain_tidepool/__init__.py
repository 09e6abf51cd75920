"""LangChain integration of the Tidepool vector database: :class:`TidepoolVectorStore`."""
from .vectorstores import TidepoolVectorStore

__version__ = "0.2.0"
__all__ = ["TidepoolVectorStore", "__version__"]
