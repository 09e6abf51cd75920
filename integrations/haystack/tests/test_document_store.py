"""Haystack's own DocumentStoreBaseTests (haystack-ai's testing package), against a real server."""
import itertools

import numpy as np
import pytest
from haystack.dataclasses import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.testing.document_store import DocumentStoreBaseTests

from tidepool_haystack import TidepoolDocumentStore

_names = itertools.count()


class TestTidepoolDocumentStore(DocumentStoreBaseTests):
    @pytest.fixture
    def document_store(self, tidepool, monkeypatch):
        monkeypatch.setenv("TIDEPOOL_API_KEY", tidepool.key)
        store = TidepoolDocumentStore(url=tidepool.url, collection_name=f"haystack-{next(_names)}", embedding_dim=768)
        yield store
        store.client.delete_collection(store.collection_name)

    def assert_documents_are_equal(self, received, expected):
        """Tidepool keeps embeddings as float32 (the suite writes Python floats) and scans in id order, so
        documents are compared by id, embeddings to float32 precision, everything else exactly."""
        received, expected = sorted(received, key=lambda d: d.id), sorted(expected, key=lambda d: d.id)
        assert [d.id for d in received] == [d.id for d in expected]
        for r, e in zip(received, expected):
            assert (r.content, r.meta, r.blob, r.score) == (e.content, e.meta, e.blob, e.score)
            assert (r.embedding is None) == (e.embedding is None)
            if e.embedding is not None:
                assert np.array_equal(np.asarray(r.embedding, np.float32), np.asarray(e.embedding, np.float32))

    def test_write_documents(self, document_store):
        """The default policy (NONE) is FAIL: an existing id raises and writes nothing."""
        docs = [Document(id="1", content="a"), Document(id="2", content="b")]
        assert document_store.write_documents(docs) == 2
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([Document(id="3", content="c"), Document(id="1", content="changed")])
        self.assert_documents_are_equal(document_store.filter_documents(), docs)
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([Document(id="9", content="x"), Document(id="9", content="y")])
        assert document_store.write_documents(docs + [Document(id="3", content="c")], policy=DuplicatePolicy.SKIP) == 1
        assert document_store.count_documents() == 3
