#!/usr/bin/env bash
# Two builds of bihu-renew against the bare reqwest loop, in alternating rounds on one sandbox:
# how BENCHMARKS.md compares a change with the build before it (single runs on a shared
# machine vary too much to compare).
#   A=path/to/bihu-renew B=path/to/other/bihu-renew benches/compare.sh [ROUNDS]
#   ENV_B=BIHU_JOURNAL=off benches/compare.sh 6      # one build, two settings
# Each round runs the bare loop, A, then B over the same 200,000 rows (N=...) at concurrency
# 64, and prints req/s and CPU seconds; the end gives the median ratios to the bare loop.
# Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-6}
N=${N:-200000}
cargo build --release --quiet --bin bihu-renew --example bare_reqwest
A=${A:-target/release/bihu-renew}
B=${B:-$A}
BARE=target/release/examples/bare_reqwest
PORT=${PORT:-18477}
BASE="http://127.0.0.1:$PORT/"
AGENT=102 TOKEN=4773EEC3EE9B572851C11DF730DCE827 SECRET=bench-secret
WORK=$(mktemp -d "$PWD/target/compare.XXXXXX")
SANDBOX_PID=
cleanup() { [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

python3 - "$N" "$WORK/list.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
serial = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
with open(path, "w", encoding="utf-8") as f:
    f.write("name,LicenseNo\n")
    for i in range(n):
        k, s = i, ""
        for _ in range(5):
            s = serial[k % 34] + s
            k //= 34
        f.write(f"lead{i},京{letters[k % 24]}{s}\n")
PY
target/release/bihu-renew sandbox --listen "127.0.0.1:$PORT" --agent-id $AGENT --token $TOKEN \
  --secret-key $SECRET 2>"$WORK/sandbox.log" &
SANDBOX_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/sandbox.log" 2>/dev/null && break; sleep 0.05; done

cpu() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.2f", u+s}' "$1"; }
rps() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['requests_per_sec']))" "$1"; }
run() { # tag binary extra-environment
  sync
  env ${3:-X_=1} BIHU_BASE_URL=$BASE BIHU_AGENT_ID=$AGENT BIHU_TOKEN=$TOKEN BIHU_SECRET_KEY=$SECRET \
    /usr/bin/time -v -o "$WORK/$1.time" "$2" run "$WORK/list.csv" -o "$WORK/$1.csv" --force \
    --no-progress --no-bom --summary-json "$WORK/$1.json" --rate 1000000000 --concurrency 64 \
    2>"$WORK/$1.err" || true
  echo "$1 $(rps "$WORK/$1.json") $(cpu "$WORK/$1.time")"
}
for round in $(seq "$ROUNDS"); do
  /usr/bin/time -v -o "$WORK/bare.time" "$BARE" "$BASE" "$N" 64 $AGENT $TOKEN $SECRET >"$WORK/bare.json"
  line="bare $(rps "$WORK/bare.json") $(cpu "$WORK/bare.time") | $(run A "$A" "${ENV_A:-}") | $(run B "$B" "${ENV_B:-}")"
  echo "$line" | tee -a "$WORK/rounds.txt"
done
python3 - "$WORK/rounds.txt" <<'PY'
import statistics, sys
rounds = [[part.split() for part in line.split("|")] for line in open(sys.argv[1])]
for i, name in ((1, "A"), (2, "B")):
    throughput = [float(r[i][1]) / float(r[0][1]) for r in rounds]
    cpu = [float(r[i][2]) / float(r[0][2]) for r in rounds]
    print(f"{name}: median throughput ratio {statistics.median(throughput):.3f}, "
          f"median CPU ratio {statistics.median(cpu):.3f} (per round: {', '.join(f'{c:.2f}' for c in cpu)})")
PY
