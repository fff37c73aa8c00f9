#!/usr/bin/env bash
# The performance suite of issue 6, in one invocation:
#   benches/run.sh            full sizes (200,000 / 1,000,000 rows; takes a few minutes)
#   QUICK=1 benches/run.sh    smaller sizes, for a smoke test of the script itself
#   ROUNDS=9 benches/run.sh   more turns of the three clients for targets 1 and 2 (default 5)
#
# It builds the release binary and the bare reqwest loop (examples/bare_reqwest.rs), starts
# `bihu-renew sandbox` on loopback, generates lead lists, measures throughput and CPU against
# the bare loop (the same signed bodies through the same reqwest transport, runtime and
# allocator: the pipeline's own cost over its client), reports oha on the same sandbox as the
# HTTP ceiling, and prints one table. CPU time and peak memory come from /usr/bin/time -v. Nothing leaves
# 127.0.0.1. Needs python3 and oha (installed with `cargo install oha` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  N_THROUGHPUT=20000; N_SMALL=10000; N_LARGE=100000; N_ISOLATION=4000
else
  N_THROUGHPUT=200000; N_SMALL=100000; N_LARGE=1000000; N_ISOLATION=20000
fi
PORT=${PORT:-18473}
BASE="http://127.0.0.1:$PORT/"
AGENT=102
TOKEN=4773EEC3EE9B572851C11DF730DCE827
SECRET=bench-secret
WORK=$(mktemp -d /tmp/bihu-bench.XXXXXX)
BIN=target/release/bihu-renew
SANDBOX_PID=

cleanup() {
  [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }

command -v oha >/dev/null || [ -x "$HOME/.cargo/bin/oha" ] || {
  say "installing oha (cargo install oha) ..."
  cargo install oha --locked >&2
}
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")

say "building the release binary and the bare reqwest loop ..."
cargo build --release --quiet --bin bihu-renew --example bare_reqwest
BARE=target/release/examples/bare_reqwest

# Distinct ordinary Beijing plates: 京 + a letter + five letters/digits, counted in base 34.
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

start_sandbox() { # extra sandbox flags...
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

# Runs bihu-renew under /usr/bin/time; leaves summary JSON and time output in $WORK/<tag>.*
run_client() { # tag input extra-flags...
  local tag=$1 input=$2; shift 2
  # The run ends with an fdatasync of its results; without this, it would also wait for the
  # earlier steps' dirty pages (the 1,000,000-row files) to reach the disk.
  sync
  BIHU_BASE_URL=$BASE BIHU_AGENT_ID=$AGENT BIHU_TOKEN=$TOKEN BIHU_SECRET_KEY=$SECRET \
    /usr/bin/time -v -o "$WORK/$tag.time" \
    "$BIN" run "$input" -o "$WORK/$tag.out.csv" --force --no-progress --no-bom \
    --summary-json "$WORK/$tag.json" "$@" 2>"$WORK/$tag.stderr" || {
      local code=$?
      if [ $code -ne 0 ] && [ $code -ne 1 ]; then say "run $tag failed ($code)"; cat "$WORK/$tag.stderr" >&2; exit 1; fi
    }
}

# CPU seconds the sandbox has used so far (user + system), from /proc.
sandbox_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$SANDBOX_PID/stat"; }
json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
cpu_secs() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.3f", u+s}' "$1"; }
peak_mb() { awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$1"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }

# A validly signed renewal body for oha (the sandbox allows 5 minutes of clock skew).
signed_body() {
  python3 - "$AGENT" "$TOKEN" "$SECRET" <<'PY'
import hashlib, json, sys, time
agent, token, secret = sys.argv[1:4]
fields = {"LicenseNo": "京A12345", "CityCode": "1", "AgentId": agent, "Token": token, "TimeStamp": int(time.time())}
pairs = sorted([(k, str(v)) for k, v in fields.items()] + [("secretKey", secret)], key=lambda p: p[0].lower())
fields["secCode"] = hashlib.md5("&".join(f"{k}={v}" for k, v in pairs).encode()).hexdigest()
print(json.dumps(fields, ensure_ascii=False))
PY
}

declare -a TABLE
row() { TABLE+=("$(printf '| %s | %s | %s | %s |' "$1" "$2" "$3" "$4")"); }

say "generating lead lists ..."
make_list "$N_THROUGHPUT" "$WORK/throughput.csv"
make_list "$N_SMALL" "$WORK/small.csv"
make_list "$N_LARGE" "$WORK/large.csv"
make_list 3200 "$WORK/latency.csv"
make_list 2000 "$WORK/rate.csv"
make_list "$N_ISOLATION" "$WORK/isolation.csv"

# 1 and 2: throughput and CPU against the bare reqwest loop, with oha as the HTTP ceiling.
# Two cores shared by the sandbox and the client make single runs vary by about 5%, so the
# bare loop, bihu-renew and oha take turns ROUNDS times and the table shows the medians, with
# the range in brackets.
ROUNDS=${ROUNDS:-5}
say "1-2: throughput and CPU, $N_THROUGHPUT rows, concurrency 64, $ROUNDS rounds ..."
start_sandbox
bare_rps_all=(); bare_cpu_all=(); oha_rps_all=(); oha_cpu_all=(); run_rps_all=(); run_cpu_all=()
sandbox_bare=0; sandbox_run=0
for round in $(seq "$ROUNDS"); do
  before=$(sandbox_cpu)
  /usr/bin/time -v -o "$WORK/bare.time" "$BARE" "$BASE" "$N_THROUGHPUT" 64 $AGENT $TOKEN $SECRET \
    >"$WORK/bare.json" 2>"$WORK/bare.stderr"
  middle=$(sandbox_cpu)
  bare_rps_all+=("$(json "$WORK/bare.json" requests_per_sec)")
  bare_cpu_all+=("$(cpu_secs "$WORK/bare.time")")
  run_client throughput "$WORK/throughput.csv" --rate 1000000000 --concurrency 64
  after=$(sandbox_cpu)
  run_rps_all+=("$(json "$WORK/throughput.json" requests_per_sec)")
  run_cpu_all+=("$(cpu_secs "$WORK/throughput.time")")
  body=$(signed_body)
  /usr/bin/time -v -o "$WORK/oha.time" "$OHA" --no-tui --output-format json -n "$N_THROUGHPUT" -c 64 \
    -m POST -H 'Content-Type: application/json; charset=utf-8' -d "$body" "${BASE}unite/unitecheckrenewal" \
    >"$WORK/oha.json" 2>"$WORK/oha.stderr"
  oha_rps_all+=("$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['requestsPerSec'])" "$WORK/oha.json")")
  oha_cpu_all+=("$(cpu_secs "$WORK/oha.time")")
  sandbox_bare=$(python3 -c "print($sandbox_bare + $middle - $before)")
  sandbox_run=$(python3 -c "print($sandbox_run + $after - $middle)")
  say "  round $round: bare loop $(printf %.0f "${bare_rps_all[-1]}") req/s, ${bare_cpu_all[-1]} CPU s;" \
    "bihu-renew $(printf %.0f "${run_rps_all[-1]}") req/s, ${run_cpu_all[-1]} CPU s;" \
    "oha $(printf %.0f "${oha_rps_all[-1]}") req/s, ${oha_cpu_all[-1]} CPU s"
done
# "median (min-max)" of numbers scaled by $1, with $2 decimals; then the bare median.
spread() { python3 - "$@" <<'PY'
import statistics, sys
scale, places, values = float(sys.argv[1]), int(sys.argv[2]), [float(v) * float(sys.argv[1]) for v in sys.argv[3:]]
f = lambda v: f"{v:,.{places}f}"
print(f"{f(statistics.median(values))} ({f(min(values))}-{f(max(values))})" if len(values) > 1 else f(values[0]))
PY
}
median() { python3 -c "import statistics,sys; print(statistics.median(float(v) * float(sys.argv[1]) for v in sys.argv[2:]))" "$@"; }
per_100k=$(python3 -c "print(100000 / $N_THROUGHPUT)")
row "1. throughput (req/s), c=64, $N_THROUGHPUT rows, median of $ROUNDS" \
  "bihu-renew $(spread 1 0 "${run_rps_all[@]}") vs bare reqwest loop $(spread 1 0 "${bare_rps_all[@]}")" \
  "$(ratio "$(median 1 "${run_rps_all[@]}")" "$(median 1 "${bare_rps_all[@]}")") x" ">= 0.90 x"
row "2. CPU s per 100k rows (user+sys), median of $ROUNDS" \
  "bihu-renew $(spread "$per_100k" 3 "${run_cpu_all[@]}") vs bare reqwest loop $(spread "$per_100k" 3 "${bare_cpu_all[@]}")" \
  "$(ratio "$(median "$per_100k" "${run_cpu_all[@]}")" "$(median "$per_100k" "${bare_cpu_all[@]}")") x" "<= 1.20 x"
row "ceiling: oha on the same sandbox, req/s and CPU s per 100k rows" \
  "$(spread 1 0 "${oha_rps_all[@]}") req/s, $(spread "$per_100k" 3 "${oha_cpu_all[@]}") CPU s" \
  "bihu-renew at $(ratio "$(median 1 "${run_rps_all[@]}")" "$(median 1 "${oha_rps_all[@]}")") x" "(reported)"
row "sandbox CPU per request (µs), same runs" "$(python3 -c "print(f'{$sandbox_run / ($N_THROUGHPUT * $ROUNDS) * 1e6:.1f} during bihu-renew, {$sandbox_bare / ($N_THROUGHPUT * $ROUNDS) * 1e6:.1f} during the bare loop')")" "" "(reported)"

# 3: memory, flat in the list's length.
say "3: peak memory, $N_SMALL and $N_LARGE rows ..."
run_client small "$WORK/small.csv" --rate 1000000000 --concurrency 64
run_client large "$WORK/large.csv" --rate 1000000000 --concurrency 64
small_mb=$(peak_mb "$WORK/small.time"); large_mb=$(peak_mb "$WORK/large.time")
row "3a. peak RSS, $N_LARGE rows (MB)" "$large_mb" "" "<= 64"
row "3b. growth over the $N_SMALL-row peak (MB)" "$(python3 -c "print(f'{$large_mb - $small_mb:.1f}')") ($small_mb -> $large_mb)" "" "<= 16"

# 4: latency hiding.
say "4: latency hiding, 100 ms, concurrency 32 ..."
start_sandbox --latency-ms 100
run_client latency "$WORK/latency.csv" --rate 1000000000 --concurrency 32
latency_rps=$(json "$WORK/latency.json" rows_per_sec)
row "4. latency 100 ms, c=32 (rows/s)" "$(printf %.1f "$latency_rps") of 320" "$(ratio "$latency_rps" 320) x" ">= 0.90 x"

# 5: rate accuracy, seen by the sandbox.
say "5: rate accuracy, --rate 200 --burst 1, 2000 rows ..."
start_sandbox --record "$WORK/arrivals.txt"
run_client rate "$WORK/rate.csv" --rate 200 --burst 1 --concurrency 8
stop_sandbox
rate_elapsed=$(json "$WORK/rate.json" elapsed_secs)
max_window=$(python3 - "$WORK/arrivals.txt" <<'PY'
import sys
times = sorted(float(line.split()[0]) for line in open(sys.argv[1]))
best, j = 0, 0
for i, t in enumerate(times):
    while times[j] <= t - 1.0:
        j += 1
    best = max(best, i - j + 1)
print(best, len(times), f"{times[-1] - times[0]:.3f}")
PY
)
read -r window n_seen span <<<"$max_window"
row "5a. elapsed, 2000 rows at 200/s (s)" "$(printf %.3f "$rate_elapsed") (sandbox saw $n_seen over $span s)" "$(python3 -c "print(f'{abs($rate_elapsed - 10) / 10 * 100:.2f}%')") off" "within 2% of 10 s"
row "5b. busiest 1 s window at the sandbox" "$window requests" "" "<= 201"

# 6: backoff isolation.
say "6: backoff isolation, 20 ms, 10% first attempts 500 + Retry-After: 1, concurrency 32 ..."
start_sandbox --latency-ms 20
run_client clean "$WORK/isolation.csv" --rate 1000000000 --concurrency 32
start_sandbox --latency-ms 20 --fail-rate 0.1 --fail-first-attempts-only --retry-after 1
run_client faulty "$WORK/isolation.csv" --rate 1000000000 --concurrency 32
stop_sandbox
clean_rps=$(json "$WORK/clean.json" rows_per_sec); faulty_rps=$(json "$WORK/faulty.json" rows_per_sec)
row "6. with faults vs without (rows/s)" "$(printf %.0f "$faulty_rps") vs $(printf %.0f "$clean_rps")" "$(ratio "$faulty_rps" "$clean_rps") x" ">= 0.70 x"

# Per-row work, no network.
say "criterion: per-row work ..."
cargo bench --quiet --bench per_row -- --noplot >"$WORK/criterion.txt" 2>&1 || true
per_row=$(python3 - "$WORK/criterion.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"time:\s+\[[^\]]*?\s([\d.]+)\s(ns|µs|us|ms)\s", text)
if not m:
    print("n/a")
else:
    value, unit = float(m.group(1)), m.group(2)
    ns = value * {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6}[unit]
    print(f"{ns / 4:.0f}")
PY
)
row "per-row work (normalise+validate+sign+serialise+write)" "$per_row ns/row" "" "(reported)"

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "bihu-renew $(git rev-parse --short HEAD 2>/dev/null || echo '?'), reqwest $(cargo tree -i reqwest -e normal --depth 0 2>/dev/null | awk '{print $2}'), oha $("$OHA" --version | awk '{print $2}'), QUICK=$QUICK"
echo
echo "| target | measured | ratio | goal |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${TABLE[@]}"
