#!/usr/bin/env bash
# Figures for `bihu-renew serve` (issue 17), against `bihu-renew sandbox` on loopback:
#   1. three jobs at rate 20: the most requests in any one-second window at the sandbox, and
#      the sum rate while work remains;
#   2. a 100-row job started while a 20,000-row job runs at rate 20: seconds to done;
#   3. a 1,000,000-row upload to `serve --sandbox` (the sandbox in the server's process):
#      the server's peak RSS (VmHWM) after upload and preview, and after the run;
#   4. 50 clients polling `GET /api/jobs/{id}` every 100 ms while that job runs: latency
#      percentiles (examples/poll_latency.rs).
# PARTS picks them: 12 (the quota's), 34 (memory and polling), default 1234.
# BIN picks the binary (default target/release/bihu-renew). Needs curl, jq and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/bihu-renew}
PARTS=${PARTS:-1234}
WORK=$(mktemp -d /tmp/bihu-serve-bench.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
port_of() { for _ in $(seq 100); do grep -o 'http://127.0.0.1:[0-9]*' "$1" 2>/dev/null | tail -1 | grep -o '[0-9]*$' && return; sleep 0.1; done; exit 1; }
# The service's own port: `serve --sandbox` names the sandbox's first.
serve_port_of() { for _ in $(seq 100); do grep -o 'listening on http://127.0.0.1:[0-9]*' "$1" 2>/dev/null | grep -o '[0-9]*$' && return; sleep 0.1; done; exit 1; }
list() { python3 -c "import sys
print('LicenseNo')
for i in range(1, $1 + 1): print('$2%05d' % i)"; }

if [[ $PARTS == *1* || $PARTS == *2* ]]; then
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
fi

if [[ $PARTS == *3* || $PARTS == *4* ]]; then
  ROWS=${ROWS:-1000000}
  # Distinct ordinary Beijing plates (base 34, as benches/run.sh makes them), with a name.
  python3 - "$ROWS" "$WORK/million.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
letters, serial = "ABCDEFGHJKLMNPQRSTUVWXYZ", "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
with open(path, "w", encoding="utf-8") as f:
    f.write("name,phone,LicenseNo\n")
    for i in range(n):
        k, s = i, ""
        for _ in range(5):
            s = serial[k % 34] + s
            k //= 34
        f.write(f"客户{i},138{i:08d},京{letters[k % 24]}{s}\n")
PY
  cat >"$WORK/big.toml" <<TOML
rate = 100000
burst = 100
concurrency = 256
TOML
  "$BIN" serve --sandbox --listen 127.0.0.1:0 --config "$WORK/big.toml" --data-dir "$WORK/big-data" 2>"$WORK/big.err" &
  BIG=$!; PIDS+=("$BIG")
  BAPI="http://127.0.0.1:$(serve_port_of "$WORK/big.err")/api"
  hwm() { awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$BIG/status"; }
  rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$BIG/status"; }
  before=$(hwm)
  U1=$(date +%s.%N)
  job=$(curl -fsS --noproxy '*' -F "file=@$WORK/million.csv" "$BAPI/jobs")
  U2=$(date +%s.%N)
  id=$(jq .id <<<"$job")
  [ "$(jq -r .state <<<"$job")" = validated ] || { echo "upload failed: $job" >&2; exit 1; }
  after_preview=$(hwm)
  echo "3. $(jq .preview.rows <<<"$job") rows, $(du -m "$WORK/million.csv" | cut -f1) MB uploaded and checked in $(python3 -c "print(f'{$U2 - $U1:.1f}')") s; server VmHWM: $before MB at start, $after_preview MB after upload and preview"
  R1=$(date +%s.%N)
  curl -fsS --noproxy '*' -X POST "$BAPI/jobs/$id/start" >/dev/null
  if [[ $PARTS == *4* ]]; then
    sleep 5
    target/release/examples/poll_latency "$BAPI/jobs/$id" 50 30 100 | sed 's/^/4. polling while the job runs: /'
  fi
  peak_rss=0
  until [ "$(curl -fsS --noproxy '*' "$BAPI/jobs/$id" | jq -r .state)" = done ]; do
    peak_rss=$(python3 -c "print(max($peak_rss, $(rss)))"); sleep 2
  done
  R2=$(date +%s.%N)
  done_job=$(curl -fsS --noproxy '*' "$BAPI/jobs/$id")
  echo "3. run: $(jq .rows_done <<<"$done_job") rows, $(jq .requests <<<"$done_job") requests in $(python3 -c "print(f'{$R2 - $R1:.0f}')") s; server VmHWM after the run: $(hwm) MB (largest VmRSS seen while running: $peak_rss MB; target <= 128)"
fi
