#!/usr/bin/env python3
"""Times FAISS k-means on a vector file, for `tidepool bench kmeans` to be held against.

    python3 scripts/faiss_kmeans.py --base /tmp/syn1m/base.fvecs --k 4096 --iterations 10

Same k, iterations and training-sample rule (256 points per centroid at most) as Tidepool.
Reports the mean squared distance of the points to their centroid after training, computed
the same way (one assignment pass with the final centroids), so the quality is comparable.
"""
import argparse, json, time
import numpy as np
import faiss


def read_fvecs(path):
    if path.endswith(".npy"):
        return np.load(path).astype(np.float32)
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--k", type=int, default=4096)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json")
    a = p.parse_args()
    x = read_fvecs(a.base)
    n, d = x.shape
    km = faiss.Kmeans(d, a.k, niter=a.iterations, seed=a.seed, max_points_per_centroid=256, verbose=False)
    t = time.perf_counter()
    km.train(x)
    seconds = time.perf_counter() - t
    dist, _ = km.index.search(x, 1)
    mse = float(dist.mean())
    print(f"faiss k-means: n={n} dim={d} k={a.k} iterations={a.iterations} threads={faiss.omp_get_max_threads()}  {seconds:.2f} s  mse {mse:.5f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"name": "faiss-kmeans", "n": n, "dim": d, "k": a.k, "iterations": a.iterations,
                       "threads": faiss.omp_get_max_threads(), "train_s": seconds, "mse": mse}, f, indent=2)


if __name__ == "__main__":
    main()
