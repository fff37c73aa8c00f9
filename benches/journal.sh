#!/usr/bin/env bash
# What the journal (issue 14) costs, in one invocation:
#   benches/journal.sh           200,000 rows at concurrency 64, three rounds; 1,000,000 rows for memory
#   QUICK=1 benches/journal.sh   smaller lists, to check the script itself
#   ROUNDS=5 benches/journal.sh  more rounds
#
# Against `bihu-renew sandbox` on loopback, the same list is run in turns: without a journal
# (BIHU_JOURNAL=off, a knob for this measurement only), with the journal and its default fsync
# cadence (about once a second), with the journal but no fsync, and with an fsync every 10 ms.
# Then the fault scenario of benches/run.sh (target 6) with and without the journal, and the
# peak RSS of a 1,000,000-row run with the journal. Files are written under target/ (the real
# disk, where fsync costs what it costs), never on tmpfs. Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
ROUNDS=${ROUNDS:-3}
if [ "$QUICK" = 1 ]; then N=20000; N_LARGE=100000; N_FAULTS=4000; else N=200000; N_LARGE=1000000; N_FAULTS=20000; fi
PORT=${PORT:-18474}
BASE="http://127.0.0.1:$PORT/"
AGENT=102
TOKEN=4773EEC3EE9B572851C11DF730DCE827
SECRET=bench-secret
mkdir -p target
WORK=$(mktemp -d "$PWD/target/journal-bench.XXXXXX")
BIN=target/release/bihu-renew
SANDBOX_PID=

cleanup() {
  [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }

say "building the release binary ..."
cargo build --release --quiet --locked

make_list() { # rows file
  python3 - "$1" "$2" <<'PY'
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
}

start_sandbox() {
  stop_sandbox
  "$BIN" sandbox --listen "127.0.0.1:$PORT" --agent-id $AGENT --token $TOKEN --secret-key $SECRET "$@" \
    2>"$WORK/sandbox.log" &
  SANDBOX_PID=$!
  for _ in $(seq 100); do
    grep -q listening "$WORK/sandbox.log" 2>/dev/null && return
    sleep 0.05
  done
  say "the sandbox did not start:"; cat "$WORK/sandbox.log" >&2; exit 1
}

stop_sandbox() {
  if [ -n "$SANDBOX_PID" ]; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
    SANDBOX_PID=
  fi
}

run_client() { # tag input env-assignments -- extra-flags...
  local tag=$1 input=$2; shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  env "${envs[@]}" BIHU_BASE_URL=$BASE BIHU_AGENT_ID=$AGENT BIHU_TOKEN=$TOKEN BIHU_SECRET_KEY=$SECRET \
    /usr/bin/time -v -o "$WORK/$tag.time" \
    "$BIN" run "$input" -o "$WORK/$tag.out.csv" --force --no-progress --no-bom \
    --summary-json "$WORK/$tag.json" "$@" 2>"$WORK/$tag.stderr" || {
      local code=$?
      if [ $code -ne 0 ] && [ $code -ne 1 ]; then say "run $tag failed ($code)"; cat "$WORK/$tag.stderr" >&2; exit 1; fi
    }
}

json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
cpu_secs() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.3f", u+s}' "$1"; }
peak_mb() { awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$1"; }
spread() { python3 - "$@" <<'PY'
import statistics, sys
places, values = int(sys.argv[1]), [float(v) for v in sys.argv[2:]]
f = lambda v: f"{v:,.{places}f}"
print(f"{f(statistics.median(values))} ({f(min(values))}-{f(max(values))})" if len(values) > 1 else f(values[0]))
PY
}

say "generating lead lists ..."
make_list "$N" "$WORK/list.csv"
make_list "$N_LARGE" "$WORK/large.csv"
make_list "$N_FAULTS" "$WORK/faults.csv"

CONDITIONS=("no journal:BIHU_JOURNAL=off" "journal, fsync every 1 s (default):BIHU_JOURNAL=on" "journal, no fsync:BIHU_JOURNAL_FSYNC_MS=off" "journal, fsync every 10 ms:BIHU_JOURNAL_FSYNC_MS=10")
declare -A RPS CPU
say "throughput and CPU, $N rows, concurrency 64, $ROUNDS rounds, the conditions in turn ..."
start_sandbox
for round in $(seq "$ROUNDS"); do
  for i in "${!CONDITIONS[@]}"; do
    setting=${CONDITIONS[$i]#*:}
    run_client "c$i" "$WORK/list.csv" "$setting" -- --rate 1000000000 --concurrency 64
    RPS[$i]="${RPS[$i]:-} $(json "$WORK/c$i.json" requests_per_sec)"
    CPU[$i]="${CPU[$i]:-} $(python3 -c "print($(cpu_secs "$WORK/c$i.time") / $N * 1e6)")"
    say "  round $round, ${CONDITIONS[$i]%%:*}: $(printf %.0f "$(json "$WORK/c$i.json" requests_per_sec)") req/s, $(cpu_secs "$WORK/c$i.time") CPU s"
  done
done
results_bytes=$(stat -c %s "$WORK/c1.out.csv" 2>/dev/null || echo 0)

say "faults: 20 ms, 10% first attempts 500 + Retry-After: 1, concurrency 32 ..."
start_sandbox --latency-ms 20 --fail-rate 0.1 --fail-first-attempts-only --retry-after 1
run_client faults-off "$WORK/faults.csv" BIHU_JOURNAL=off -- --rate 1000000000 --concurrency 32
start_sandbox --latency-ms 20 --fail-rate 0.1 --fail-first-attempts-only --retry-after 1
run_client faults-on "$WORK/faults.csv" BIHU_JOURNAL=on -- --rate 1000000000 --concurrency 32

say "memory: $N_LARGE rows with the journal ..."
start_sandbox
run_client large "$WORK/large.csv" BIHU_JOURNAL=on -- --rate 1000000000 --concurrency 64
stop_sandbox

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr), $(df -T "$WORK" | awk 'NR==2{print $2}') disk"
echo "bihu-renew $(git rev-parse --short HEAD 2>/dev/null || echo '?'), QUICK=$QUICK, ROUNDS=$ROUNDS"
echo
echo "| condition | req/s, median (range) | CPU µs per row, median (range) |"
echo "| --- | --- | --- |"
for i in "${!CONDITIONS[@]}"; do
  # shellcheck disable=SC2086
  echo "| ${CONDITIONS[$i]%%:*} | $(spread 0 ${RPS[$i]}) | $(spread 2 ${CPU[$i]}) |"
done
echo
echo "| faults (target 6 of run.sh), $N_FAULTS rows | rows/s | CPU s |"
echo "| --- | --- | --- |"
echo "| no journal | $(printf %.0f "$(json "$WORK/faults-off.json" rows_per_sec)") | $(cpu_secs "$WORK/faults-off.time") |"
echo "| journal | $(printf %.0f "$(json "$WORK/faults-on.json" rows_per_sec)") | $(cpu_secs "$WORK/faults-on.time") |"
echo
echo "peak RSS, $N_LARGE rows, with the journal: $(peak_mb "$WORK/large.time") MB; results file of $N rows: $results_bytes bytes"
