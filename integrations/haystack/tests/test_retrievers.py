"""The retrievers in a pipeline, documents without embeddings, blobs and serialization."""
import numpy as np
from haystack import Pipeline
from haystack.dataclasses import ByteStream, Document

from tidepool_haystack import TidepoolBM25Retriever, TidepoolDocumentStore, TidepoolEmbeddingRetriever


def test_retrieval_and_documents_without_embeddings(tidepool, monkeypatch):
    monkeypatch.setenv("TIDEPOOL_API_KEY", tidepool.key)
    store = TidepoolDocumentStore(url=tidepool.url, collection_name="haystack-retrieval", embedding_dim=4,
                                  similarity="cosine")
    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((20, 4))
    docs = [Document(id=f"d{i}", content=f"alpha {'beta' if i % 2 else 'gamma'} {i}", meta={"i": i, "odd": i % 2 == 1},
                     embedding=vecs[i].tolist() if i < 15 else None) for i in range(20)]
    docs.append(Document(id="blob", content="a picture", blob=ByteStream(b"\x89PNG\x00", mime_type="image/png")))
    assert store.write_documents(docs) == 21
    retriever = TidepoolEmbeddingRetriever(store, top_k=30, return_embedding=True)
    found = retriever.run(query_embedding=vecs[3].tolist())["documents"]
    assert len(found) == 15 and found[0].id == "d3" and abs(found[0].score - 1) < 1e-5
    assert found[0].embedding is not None and found[0].meta == {"i": 3, "odd": True}
    odd = retriever.run(query_embedding=vecs[3].tolist(), filters={"field": "meta.odd", "operator": "==", "value": True})
    assert {d.meta["i"] for d in odd["documents"]} == {1, 3, 5, 7, 9, 11, 13}
    bm25 = TidepoolBM25Retriever(store, top_k=50).run(query="beta")["documents"]
    assert {d.id for d in bm25} == {f"d{i}" for i in range(1, 20, 2)}  # with and without embeddings
    assert store.get_documents_by_id(["blob"])[0].blob.data == b"\x89PNG\x00"
    pipeline = Pipeline()
    pipeline.add_component("retriever", TidepoolEmbeddingRetriever(store, top_k=2))
    restored = Pipeline.loads(pipeline.dumps(), allowed_modules=["tidepool_haystack.retrievers", "tidepool_haystack.document_store"])
    assert [d.id for d in restored.run({"retriever": {"query_embedding": vecs[7].tolist()}})["retriever"]["documents"]][0] == "d7"
    store.delete_all_documents()
    assert store.count_documents() == 0
