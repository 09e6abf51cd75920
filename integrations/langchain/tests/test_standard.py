"""LangChain's own standard suite for vector stores (langchain-tests), against a real server."""
import itertools

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_tidepool import TidepoolVectorStore

_names = itertools.count()


class TestTidepoolStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tidepool):
        store = TidepoolVectorStore(self.get_embeddings(), collection_name=f"standard-{next(_names)}",
                                    url=tidepool.url, api_key=tidepool.key)
        try:
            yield store
        finally:
            store.delete()
