#!/usr/bin/env python3
"""Writes a held-out copy of a texmex dataset: --queries base vectors drawn at random (--seed)
become the queries and leave the base, and the exact top-100 over the rest is the ground truth,
so that default settings can be checked on queries they were never tuned on.

    python3 scripts/make_holdout.py ../shared/datasets/pypi-minilm-100k --out /tmp/pypi-holdout --metric cosine
    tidepool bench --base /tmp/pypi-holdout/base.fvecs --query /tmp/pypi-holdout/query.fvecs \
        --gt /tmp/pypi-holdout/groundtruth.ivecs --metric cosine --efs 64

Needs numpy and faiss-cpu (exact search by IndexFlatIP for cosine/ip, IndexFlatL2 for l2).
"""
import argparse
import os

import numpy as np


def read_fvecs(path):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def write_vecs(path, x):
    n, d = x.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = x.view(np.int32) if x.dtype == np.float32 else x
    out.tofile(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", help="a folder with base.fvecs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--metric", choices=["cosine", "ip", "l2"], default="cosine")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    import faiss

    x = read_fvecs(os.path.join(a.dataset, "base.fvecs"))
    order = np.random.default_rng(a.seed).permutation(len(x))
    queries, base = x[order[: a.queries]], x[np.sort(order[a.queries:])]
    index = (faiss.IndexFlatL2 if a.metric == "l2" else faiss.IndexFlatIP)(x.shape[1])
    index.add(base)
    _, truth = index.search(queries, 100)
    os.makedirs(a.out, exist_ok=True)
    write_vecs(os.path.join(a.out, "base.fvecs"), base)
    write_vecs(os.path.join(a.out, "query.fvecs"), queries)
    write_vecs(os.path.join(a.out, "groundtruth.ivecs"), truth.astype(np.int32))
    print(f"wrote {len(base)} base and {len(queries)} held-out query vectors to {a.out}")


if __name__ == "__main__":
    main()
