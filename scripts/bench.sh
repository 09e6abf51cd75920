#!/usr/bin/env bash
# Measures Tidepool (HNSW over f32 and over SQ8 codes, and exact search) and its peers on the
# same data, in the same run, and prints the ratios the speed issues ask for.
#
#   scripts/bench.sh [DATASET_DIR]     (default: ../shared/datasets/pypi-minilm-100k)
#
# Environment: ROUNDS (default 3), PEERS (default svs-vamana,vsag-hgraph,scann,hnswlib,faiss-flat),
# METRIC (default cosine), OUT (default bench-results).
# Needs: pip install faiss-cpu hnswlib scann==1.4.2 pyvsag==0.18.5 scalable-vs==0.5.0 numpy
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/datasets/pypi-minilm-100k}
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-svs-vamana,vsag-hgraph,scann,hnswlib,faiss-flat}
METRIC=${METRIC:-cosine}
OUT=${OUT:-bench-results}
mkdir -p "$OUT"
swift build -c release --product tidepool
common=(--base "$DATA/base.fvecs" --query "$DATA/query.fvecs" --gt "$DATA/groundtruth.ivecs" --metric "$METRIC" --k 10 --threads 2 --rounds "$ROUNDS")
.build/release/tidepool bench "${common[@]}" --json "$OUT/tidepool.json"
.build/release/tidepool bench "${common[@]}" --quantization sq8 --flat-queries 0 --skip-background-ingest --json "$OUT/tidepool-sq8.json"
python3 ../shared/bench/peers.py "${common[@]}" --build-threads 2 --peers "$PEERS" --json "$OUT/peers.json"
python3 scripts/compare.py "$OUT/tidepool.json" "$OUT/peers.json" "$OUT/tidepool-sq8.json"
