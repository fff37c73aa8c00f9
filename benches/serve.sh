#!/usr/bin/env bash
# Figures for `bihu-renew serve` (issue 17), against `bihu-renew sandbox` on loopback:
#   1. three jobs at rate 20: the most requests in any one-second window at the sandbox, and
#      the sum rate while work remains;
#   2. a 100-row job started while a 20,000-row job runs at rate 20: seconds to done.
# BIN picks the binary (default target/release/bihu-renew). Needs curl, jq and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/bihu-renew}
WORK=$(mktemp -d /tmp/bihu-serve-bench.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
port_of() { for _ in $(seq 100); do grep -o 'http://127.0.0.1:[0-9]*' "$1" 2>/dev/null | tail -1 | grep -o '[0-9]*$' && return; sleep 0.1; done; exit 1; }
list() { python3 -c "import sys
print('LicenseNo')
for i in range(1, $1 + 1): print('$2%05d' % i)"; }

"$BIN" sandbox --listen 127.0.0.1:0 --latency-ms 20 --secret-key bench-secret --record "$WORK/requests.txt" 2>"$WORK/sandbox.err" &
SANDBOX=$!; PIDS+=("$SANDBOX")
SPORT=$(port_of "$WORK/sandbox.err")
cat >"$WORK/bihu.toml" <<TOML
base_url = "http://127.0.0.1:$SPORT/"
agent_id = 102
token = "4773EEC3EE9B572851C11DF730DCE827"
secret_key = "bench-secret"
rate = 20
burst = 1
concurrency = 8
TOML
chmod 600 "$WORK/bihu.toml"
"$BIN" serve --listen 127.0.0.1:0 --config "$WORK/bihu.toml" --data-dir "$WORK/data" 2>"$WORK/serve.err" &
PIDS+=("$!")
API="http://127.0.0.1:$(port_of "$WORK/serve.err")/api"
upload() { curl -fsS --noproxy '*' -F "file=@$1" -F start=true "$API/jobs" | jq .id; }
state() { curl -fsS --noproxy '*' "$API/jobs/$1" | jq -r .state; }

# 1. Three jobs of 200 rows each, started together (600 requests: about 30 s at rate 20).
for j in A B C; do list 200 "京$j" >"$WORK/three$j.csv"; done
T1=$(date +%s.%N)
ids=(); for j in A B C; do ids+=("$(upload "$WORK/three$j.csv")"); done
for id in "${ids[@]}"; do until [ "$(state "$id")" = done ]; do sleep 0.2; done; done
T2=$(date +%s.%N)

# 2. A 20,000-row job, and after 5 s a 100-row one.
list 20000 "粤B" >"$WORK/big.csv"; list 100 "沪C" >"$WORK/small.csv"
big=$(upload "$WORK/big.csv"); sleep 5
S1=$(date +%s.%N); small=$(upload "$WORK/small.csv")
until [ "$(state "$small")" = done ]; do sleep 0.1; done
S2=$(date +%s.%N)
curl -fsS --noproxy '*' -X POST "$API/jobs/$big/cancel" >/dev/null

kill -INT "$SANDBOX"; wait "$SANDBOX" || true
python3 - "$WORK/requests.txt" "$T1" "$T2" "$S1" "$S2" <<'PY'
import sys
times = sorted(float(line.split()[0]) for line in open(sys.argv[1]))
t1, t2, s1, s2 = map(float, sys.argv[2:])
first = times[:600]
most = max(sum(1 for u in first[i:i + 40] if u < t + 1.0) for i, t in enumerate(first))
span = first[-1] - first[0]
print(f"1. three jobs at rate 20: {len(first)} requests in {span:.1f} s = {len(first) / span:.2f}/s "
      f"({len(first) / span / 20:.1%} of the rate); most in one 1-s window: {most} (limit rate + burst = 21)")
print(f"2. 100-row job beside a 20,000-row job at rate 20: done {s2 - s1:.1f} s after its upload (target 12 s)")
PY
