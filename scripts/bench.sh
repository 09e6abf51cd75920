#!/usr/bin/env bash
# Measures Tidepool and its peers (hnswlib, FAISS flat; more with PEERS=...) on the same data,
# in the same run, and prints the ratios the engine issue asks for.
#
#   scripts/bench.sh [DATASET_DIR]     (default: ../shared/datasets/pypi-minilm-100k)
#
# Environment: ROUNDS (default 3), PEERS (default hnswlib,faiss-flat), OUT (default bench-results).
# Needs: pip install faiss-cpu hnswlib usearch numpy
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/datasets/pypi-minilm-100k}
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-hnswlib,faiss-flat}
OUT=${OUT:-bench-results}
mkdir -p "$OUT"
swift build -c release --product tidepool
.build/release/tidepool bench --base "$DATA/base.fvecs" --query "$DATA/query.fvecs" --gt "$DATA/groundtruth.ivecs" \
    --metric cosine --k 10 --threads 2 --rounds "$ROUNDS" --json "$OUT/tidepool.json"
python3 ../shared/bench/peers.py --base "$DATA/base.fvecs" --query "$DATA/query.fvecs" --gt "$DATA/groundtruth.ivecs" \
    --metric cosine --k 10 --threads 2 --build-threads 2 --rounds "$ROUNDS" --peers "$PEERS" --json "$OUT/peers.json"
python3 scripts/compare.py "$OUT/tidepool.json" "$OUT/peers.json"
