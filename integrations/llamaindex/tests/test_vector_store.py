"""The vector store as LlamaIndex uses it: nodes with source relationships, MetadataFilters, node-id-limited
search, text and hybrid modes, MMR, and an index and retriever built on it, against a real server."""
import numpy as np
import pytest
from llama_index.core import Settings, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (FilterCondition, FilterOperator, MetadataFilter, MetadataFilters,
                                                  VectorStoreQuery, VectorStoreQueryMode)

from llama_index.vector_stores.tidepool import TidepoolVectorStore


def _nodes(n=30, dim=8):
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((n, dim))
    nodes = []
    for i in range(n):
        node = TextNode(id_=f"n{i}", text=f"chunk {i} about {'cats' if i % 3 == 0 else 'dogs'}",
                        metadata={"i": i, "animal": "cat" if i % 3 == 0 else "dog", "tags": [f"t{i % 2}"]},
                        embedding=vecs[i].tolist())
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=f"doc{i // 10}")
        nodes.append(node)
    return nodes, vecs


@pytest.fixture
def store(tidepool):
    s = TidepoolVectorStore(collection_name=f"llama-{np.random.default_rng().integers(1 << 30)}", url=tidepool.url,
                            api_key=tidepool.key)
    yield s
    s.clear()


def test_add_query_filters_and_deletes(store):
    nodes, vecs = _nodes()
    assert store.add(nodes) == [n.node_id for n in nodes]
    r = store.query(VectorStoreQuery(query_embedding=vecs[4].tolist(), similarity_top_k=3))
    assert r.ids[0] == "n4" and r.similarities[0] == pytest.approx(1.0, abs=1e-5)
    assert r.nodes[0].get_content() == "chunk 4 about dogs" and r.nodes[0].metadata["i"] == 4
    assert r.nodes[0].ref_doc_id == "doc0"
    cats = MetadataFilters(filters=[MetadataFilter(key="animal", value="cat"),
                                    MetadataFilter(key="i", value=10, operator=FilterOperator.GTE)])
    r = store.query(VectorStoreQuery(query_embedding=vecs[0].tolist(), similarity_top_k=30, filters=cats))
    assert sorted(n.metadata["i"] for n in r.nodes) == [12, 15, 18, 21, 24, 27]
    either = MetadataFilters(filters=[MetadataFilter(key="i", value=[1, 2], operator=FilterOperator.IN),
                                      MetadataFilter(key="tags", value=["t0"], operator=FilterOperator.ANY)],
                             condition=FilterCondition.OR)
    r = store.query(VectorStoreQuery(query_embedding=vecs[0].tolist(), similarity_top_k=30, filters=either))
    assert sorted(n.metadata["i"] for n in r.nodes) == sorted({1, 2} | set(range(0, 30, 2)))
    # Limited to given nodes, and to given source documents.
    r = store.query(VectorStoreQuery(query_embedding=vecs[0].tolist(), similarity_top_k=10, node_ids=["n5", "n7"]))
    assert sorted(r.ids) == ["n5", "n7"]
    r = store.query(VectorStoreQuery(query_embedding=vecs[0].tolist(), similarity_top_k=30, doc_ids=["doc2"]))
    assert sorted(r.ids) == sorted(f"n{i}" for i in range(20, 30))
    # A key no node has is no match, not an error.
    missing = MetadataFilters(filters=[MetadataFilter(key="colour", value="red")])
    assert store.query(VectorStoreQuery(query_embedding=vecs[0].tolist(), filters=missing)).ids == []
    text = store.query(VectorStoreQuery(query_str="cats", mode=VectorStoreQueryMode.TEXT_SEARCH, similarity_top_k=30))
    assert sorted(text.ids) == sorted(f"n{i}" for i in range(0, 30, 3))
    hybrid = store.query(VectorStoreQuery(query_embedding=vecs[3].tolist(), query_str="cats", alpha=0.5,
                                          mode=VectorStoreQueryMode.HYBRID, similarity_top_k=3))
    assert hybrid.ids[0] == "n3"
    mmr = store.query(VectorStoreQuery(query_embedding=vecs[6].tolist(), similarity_top_k=4,
                                       mode=VectorStoreQueryMode.MMR, mmr_threshold=0.5))
    assert len(mmr.ids) == 4 and mmr.ids[0] == "n6"
    got = store.get_nodes(node_ids=["n9", "n1"])
    assert [n.node_id for n in got] == ["n9", "n1"] and got[0].embedding is not None
    assert len(store.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="animal", value="cat")]))) == 10
    store.delete("doc0")
    assert store.get_nodes(node_ids=["n1", "n11"])[0].node_id == "n11"
    store.delete_nodes(["n11"])
    store.delete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="animal", value="cat")]))
    left = store.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="i", value=0,
                                                                          operator=FilterOperator.GTE)]))
    assert sorted(n.node_id for n in left) == sorted(f"n{i}" for i in range(10, 30) if i % 3 and i != 11)


def test_an_index_and_retriever_over_it(store):
    Settings.embed_model = MockEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(
        [], storage_context=StorageContext.from_defaults(vector_store=store))
    nodes, _ = _nodes(12)
    index.insert_nodes(nodes)
    retriever = index.as_retriever(similarity_top_k=5)
    found = retriever.retrieve("anything")  # MockEmbedding: every vector alike, so any five
    assert len(found) == 5 and all(f.node.get_content().startswith("chunk") for f in found)
    index.delete_ref_doc("doc1")
    assert len(index.as_retriever(similarity_top_k=12).retrieve("x")) == 10
