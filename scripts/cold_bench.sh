#!/usr/bin/env bash
# The cold tier against DiskANN's SSD index, both searched in the same memory limit (a cgroup v1
# memory group per setting, page cache counted, caches dropped first), one query at a time.
#
#   scripts/cold_bench.sh LIMIT_MB [OUT_DIR]
#
# Env: DATA (default ../shared/datasets/pypi-minilm-100k), METRIC (cosine), TIDEPOOL
# (.build/release/tidepool), TP_DIR / DK_DIR (index folders, built when missing), NPROBES,
# DK_L, QUERIES (default all). Needs root (cgroups, drop_caches) and diskannpy (see
# ../shared/bench/README.md). Writes OUT_DIR/tidepool.json, OUT_DIR/diskann.jsonl and prints
# the comparison at recall 0.95.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:?usage: cold_bench.sh LIMIT_MB [OUT_DIR]}
OUT=${2:-/tmp/cold-bench-$LIMIT}
DATA=${DATA:-../shared/datasets/pypi-minilm-100k}
METRIC=${METRIC:-cosine}
TIDEPOOL=${TIDEPOOL:-.build/release/tidepool}
TP_DIR=${TP_DIR:-/tmp/cold-bench-tidepool-$(basename "$DATA")}
DK_DIR=${DK_DIR:-/tmp/cold-bench-diskann-$(basename "$DATA")}
NPROBES=${NPROBES:-32,48,64,96,128,192}
DK_L=${DK_L:-10,16,20,32,48,64,96,128}
QARGS=()
[[ -n "${QUERIES:-}" ]] && QARGS=(--max-queries "$QUERIES")
mkdir -p "$OUT"
CG=/sys/fs/cgroup/memory
[[ -w $CG ]] || { echo "cold_bench: needs root and cgroup v1 memory at $CG" >&2; exit 2; }

# Tidepool with default settings under a budget of a quarter of the limit: the planner builds
# the segment as IVF-PQ and searches it from the cold tier.
"$TIDEPOOL" bench --base "$DATA/base.fvecs" --query "$DATA/query.fvecs" --gt "$DATA/groundtruth.ivecs" \
  --metric "$METRIC" --index auto --reuse-dir "$TP_DIR" --nprobes "$NPROBES" \
  --memory-limit "$LIMIT" --memory-budget $((LIMIT / 4)) --skip-background-ingest "${QARGS[@]}" \
  --json "$OUT/tidepool.json"

# DiskANN: the same limit, one fresh group per L.
[[ -f "$DK_DIR/ann_disk.index" ]] || python3 scripts/diskann_cold.py build --base "$DATA/base.fvecs" --metric "$METRIC" --dir "$DK_DIR"
: > "$OUT/diskann.jsonl"
for L in ${DK_L//,/ }; do
  g=$CG/tidepool-cold-bench-$$-$L
  mkdir "$g"
  echo $((LIMIT << 20)) > "$g/memory.limit_in_bytes"
  echo 0 > "$g/memory.swappiness" || true
  sync; echo 3 > /proc/sys/vm/drop_caches
  line=$(sh -c "echo \$\$ > $g/cgroup.procs && exec python3 scripts/diskann_cold.py search --dir $DK_DIR \
    --query $DATA/query.fvecs --gt $DATA/groundtruth.ivecs --metric $METRIC --L $L ${QARGS[*]}" | grep '^{' | tail -1) || true
  [[ $line == '{'* ]] || line='{"param": '$L', "failed": true}'
  peak=$(cat "$g/memory.max_usage_in_bytes")
  rmdir "$g" || true
  echo "${line%\}}, \"cgroup_peak_bytes\": $peak}" | tee -a "$OUT/diskann.jsonl"
done

python3 - "$OUT" "$LIMIT" <<'PY'
import json, sys
out, limit = sys.argv[1], sys.argv[2]
tp = json.load(open(f"{out}/tidepool.json"))["peers"][0]
dk = [json.loads(l) for l in open(f"{out}/diskann.jsonl") if l.startswith("{")]
def best(rows, t):
    ok = [r for r in rows if not r.get("failed") and r["recall"] >= t]
    return max(ok, key=lambda r: r["qps"]) if ok else None
print(f"limit {limit} MB")
for t in (0.90, 0.95):
    a, b = best(tp["sweep"], t), best(dk, t)
    fmt = lambda r, knob: "not reached" if r is None else \
        f'{r["qps"]:.0f} QPS ({knob} {r["param"]}, recall {r["recall"]:.3f}, p50 {r["p50_us"]/1000:.2f} ms, p99 {r["p99_us"]/1000:.2f} ms, peak {r.get("cgroup_peak_bytes", 0)/2**20:.0f} MB)'
    ratio = f' = {a["qps"]/b["qps"]:.2f}x diskann' if a and b else ""
    print(f"recall >= {t}: tidepool {fmt(a, 'nprobe')}; diskann {fmt(b, 'L')}{ratio}")
PY
