#!/usr/bin/env bash
# A/B speed check of two `tidepool` release binaries on the same data in the same run: builds
# an HNSW and an IVF-PQ database once (with the first binary; formats are shared), then
# alternates OLD and NEW searching them (one query per call, one thread), ROUNDS times each,
# and prints the median QPS of each binary and NEW/OLD for HNSW at ef 64 and IVF-PQ at nprobe 128.
#
#   scripts/ab_speed.sh OLD_BINARY NEW_BINARY [DATASET_DIR]
#
# Environment: ROUNDS (default 3), KINDS (default "hnsw ivfpq"), WORK (default a temporary
# directory, removed at the end).
set -euo pipefail
OLD=$1
NEW=$2
DATA=${3:-../shared/datasets/pypi-minilm-100k}
ROUNDS=${ROUNDS:-3}
KINDS=${KINDS:-hnsw ivfpq}
WORK=${WORK:-$(mktemp -d)}
trap 'rm -rf "$WORK"' EXIT
common=(--base "$DATA/base.fvecs" --query "$DATA/query.fvecs" --gt "$DATA/groundtruth.ivecs" --metric cosine --k 10
        --threads 2 --rounds 3 --flat-queries 0 --skip-background-ingest)
hnsw=(--index hnsw --efs 64 --reuse-dir "$WORK/hnsw")
ivfpq=(--index ivf --quantization pq --nprobes 128 --reuse-dir "$WORK/ivfpq")

args() { if [ "$1" = hnsw ]; then echo "${hnsw[@]}"; else echo "${ivfpq[@]}"; fi; }
echo "building the databases with $OLD" >&2
for kind in $KINDS; do
    # shellcheck disable=SC2046
    "$OLD" bench "${common[@]}" $(args "$kind") --json "$WORK/build-$kind.json" > /dev/null 2>&1
done

for round in $(seq 1 "$ROUNDS"); do
    for side in old new; do
        bin=$OLD; [ "$side" = new ] && bin=$NEW
        for kind in $KINDS; do
            # shellcheck disable=SC2046
            "$bin" bench "${common[@]}" $(args "$kind") --json "$WORK/$side-$kind-$round.json" > /dev/null 2>&1
        done
    done
done

python3 - "$WORK" "$ROUNDS" $KINDS <<'EOF'
import json, statistics, sys
work, rounds, kinds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def qps(path):
    p = json.load(open(path))["peers"][0]["sweep"][0]
    return p["qps"], p["recall"]
for kind, label in [(k, {"hnsw": "HNSW f32, ef 64", "ivfpq": "IVF-PQ, nprobe 128"}[k]) for k in kinds]:
    old = [qps(f"{work}/old-{kind}-{r}.json") for r in range(1, rounds + 1)]
    new = [qps(f"{work}/new-{kind}-{r}.json") for r in range(1, rounds + 1)]
    mo, mn = statistics.median(q for q, _ in old), statistics.median(q for q, _ in new)
    print(f"{label}: old {[round(q) for q, _ in old]} (recall {old[0][1]}), new {[round(q) for q, _ in new]} "
          f"(recall {new[0][1]}); median old {mo:.0f}, new {mn:.0f}, new/old {mn / mo:.3f}")
EOF
