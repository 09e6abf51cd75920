"""What the standard suite does not cover: filters, scores, MMR, from_texts, deletes by filter."""
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_tidepool import TidepoolVectorStore

EMB = DeterministicFakeEmbedding(size=16)
TEXTS = [f"text number {i}" for i in range(40)]
METAS = [{"n": i, "parity": "even" if i % 2 == 0 else "odd", "tags": [f"t{i % 3}"]} for i in range(40)]


def test_filters_scores_mmr_and_deletes(tidepool):
    store = TidepoolVectorStore.from_texts(TEXTS, EMB, METAS, collection_name="lc-features", url=tidepool.url,
                                           api_key=tidepool.key)
    best = store.similarity_search_with_score(TEXTS[7], k=3)
    assert best[0][0].page_content == TEXTS[7] and best[0][0].metadata["n"] == 7 and best[0][1] == pytest.approx(0, abs=1e-5)
    assert best[1][1] >= best[0][1]
    odd = store.similarity_search(TEXTS[7], k=40, filter={"parity": "odd", "n": {"lt": 20}})
    assert sorted(d.metadata["n"] for d in odd) == list(range(1, 20, 2))
    assert {d.metadata["n"] for d in store.similarity_search(TEXTS[0], k=40, filter={"tags": {"contains": "t1"}})} \
        == set(range(1, 40, 3))
    relevance = store.similarity_search_with_relevance_scores(TEXTS[3], k=2)
    assert relevance[0][1] == pytest.approx(1.0, abs=1e-5) and 0 <= relevance[1][1] < 1
    mmr = store.max_marginal_relevance_search(TEXTS[5], k=4, fetch_k=20)
    assert len(mmr) == 4 and mmr[0].page_content == TEXTS[5] and len({d.id for d in mmr}) == 4
    assert store.delete(filter={"parity": "even"})
    assert len(store.similarity_search(TEXTS[0], k=40)) == 20
    with pytest.raises(ValueError, match="page_content"):
        store.add_texts(["x"], [{"page_content": "clash"}])
    retriever = store.as_retriever(search_kwargs={"k": 2, "filter": {"n": {"gte": 30}}})
    assert all(d.metadata["n"] >= 30 for d in retriever.invoke(TEXTS[31]))
    assert store.delete()  # the whole collection
    assert store.similarity_search(TEXTS[0], k=1) == []


async def test_async_mmr_and_from_texts(tidepool):
    store = await TidepoolVectorStore.afrom_texts(TEXTS[:10], EMB, METAS[:10], ids=[f"a{i}" for i in range(10)],
                                                  collection_name="lc-async", url=tidepool.url, api_key=tidepool.key,
                                                  metric="l2")
    got = await store.aget_by_ids(["a3", "missing", "a1"])
    assert [d.id for d in got] == ["a3", "a1"] and got[0] == Document(id="a3", page_content=TEXTS[3], metadata=METAS[3])
    mmr = await store.amax_marginal_relevance_search(TEXTS[2], k=3, fetch_k=10, filter={"n": {"lt": 8}})
    assert mmr[0].id == "a2" and all(d.metadata["n"] < 8 for d in mmr)
    hits = await store.asimilarity_search_with_score(TEXTS[4], k=1)
    assert hits[0][0].id == "a4"
    await store.adelete()
