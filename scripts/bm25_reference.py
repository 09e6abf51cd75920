#!/usr/bin/env python3
"""Compares Tidepool's BM25 top-10s (from `tidepool bench text --top-out`) with bm25s.

bm25s runs with Lucene's formula (method="lucene", k1=1.2, b=0.75) over the same summaries,
tokenized the same way: lowercase, runs of Unicode letters and digits (`[^\\W_]+`), no stemming,
no stop words. Reports, over all queries and the 10 positions:
  - strict agreement: the same id at the same position as bm25s's scores for every document ordered by
    (score descending, id ascending), the tie order Tidepool documents;
  - tie-aware agreement with bm25s's own `retrieve` order: the same id, or the same score (its top-k
    orders tied scores arbitrarily).

    python3 scripts/bm25_reference.py DOCS.tsv TOPS.jsonl [--json OUT]
Needs: pip install bm25s numpy
"""
import json
import re
import sys

import bm25s
import numpy as np

TOKEN = re.compile(r"[^\W_]+")


def tokenize(text):
    return TOKEN.findall(text.lower())


def main():
    docs_path, tops_path = sys.argv[1], sys.argv[2]
    out = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--json" else None
    summaries = []
    for line in open(docs_path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t", 4)
        summaries.append(f[4] if len(f) == 5 else "")
    corpus = [tokenize(s) for s in summaries]
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    retriever.index(corpus, show_progress=False)
    strict = tie = total = 0
    ids = np.arange(len(corpus))
    max_score_diff = 0.0
    for line in open(tops_path, encoding="utf-8"):
        row = json.loads(line)
        ours, our_scores = row["ids"], row["scores"]
        q = tokenize(row["query"])
        docs, scores = retriever.retrieve([q], k=10, show_progress=False)
        ref, ref_scores = [int(x) for x in docs[0]], [float(x) for x in scores[0]]
        ref = [d for d, s in zip(ref, ref_scores) if s > 0]
        ref_scores = [s for s in ref_scores if s > 0]
        every = retriever.get_scores(q)
        order = np.lexsort((ids, -every))[:10]
        ordered = [int(d) for d in order if every[d] > 0]
        for i in range(max(len(ours), len(ref), len(ordered))):
            total += 1
            if i < len(ours) and i < len(ordered) and ours[i] == ordered[i]:
                strict += 1
            if i < len(ours) and i < len(ref):
                if ours[i] == ref[i] or abs(our_scores[i] - ref_scores[i]) <= 1e-4 * max(1.0, abs(ref_scores[i])):
                    tie += 1
                max_score_diff = max(max_score_diff, abs(our_scores[i] - ref_scores[i]))
    report = {"positions": total, "strict_agreement": strict / total, "tie_aware_agreement": tie / total,
              "max_score_difference": max_score_diff, "reference": f"bm25s {bm25s.__version__} lucene k1=1.2 b=0.75"}
    print(json.dumps(report))
    if out:
        json.dump(report, open(out, "w"))


if __name__ == "__main__":
    main()
