#!/usr/bin/env bash
# Figures for the answer history (issue 19), against `bihu-renew sandbox` on loopback:
#   1. seven daily lists of 10,000 rows, 60% of each day's vehicles seen on an earlier day:
#      requests sent with --history and --reuse-within 7d, against the same days without;
#   2. CPU per row of a list of new vehicles (every lookup misses, every answer is recorded):
#      no history, --history alone (recording), --history with --reuse-within (lookups too);
#      ROUNDS rounds each, in turns (default 3), medians;
#   3. a history of 10,000,000 answers: lookup percentiles and the file's size
#      (examples/history_lookup.rs; the file is kept as target/history-10m.sqlite and reused).
# Needs python3 and /usr/bin/time. N_LOOKUP=0 skips 3; N_HISTORY changes its size.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/bihu-renew}
ROUNDS=${ROUNDS:-3}
N_HISTORY=${N_HISTORY:-10000000}
N_LOOKUP=${N_LOOKUP:-200000}
PORT=${PORT:-18475}
AGENT=102; TOKEN=4773EEC3EE9B572851C11DF730DCE827; SECRET=bench-secret
# On the real disk (target/), never on tmpfs: SQLite's fsyncs are part of the cost.
mkdir -p target
WORK=$(mktemp -d target/bihu-history-bench.XXXXXX)
SANDBOX_PID=
cleanup() { [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }

cargo build --release --quiet --bin bihu-renew --example history_lookup

say "generating the lists ..."
python3 - "$WORK" <<'PY'
import random, sys
work = sys.argv[1]
rng = random.Random(19)
letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
serial = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
def plate(i):
    s = ""
    for _ in range(5):
        s = serial[i % 34] + s
        i //= 34
    return f"京{letters[i % 24]}{s}"
seen, next_id = [], 0
for day in range(1, 8):
    n_old = 0 if day == 1 else 6000
    old = rng.sample(seen, n_old)
    new = list(range(next_id, next_id + 10000 - n_old))
    next_id += len(new)
    seen.extend(new)
    rows = old + new
    rng.shuffle(rows)
    with open(f"{work}/day{day}.csv", "w", encoding="utf-8") as f:
        f.write("name,LicenseNo\n")
        f.writelines(f"lead{i},{plate(i)}\n" for i in rows)
# 50,000 vehicles no day has.
with open(f"{work}/fresh.csv", "w", encoding="utf-8") as f:
    f.write("name,LicenseNo\n")
    f.writelines(f"lead{i},{plate(i)}\n" for i in range(1_000_000, 1_050_000))
PY

"$BIN" sandbox --listen "127.0.0.1:$PORT" --agent-id $AGENT --token $TOKEN --secret-key $SECRET 2>"$WORK/sandbox.log" &
SANDBOX_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/sandbox.log" 2>/dev/null && break; sleep 0.05; done

run_client() { # tag input extra-flags...
  local tag=$1 input=$2; shift 2
  BIHU_BASE_URL="http://127.0.0.1:$PORT/" BIHU_AGENT_ID=$AGENT BIHU_TOKEN=$TOKEN BIHU_SECRET_KEY=$SECRET \
    /usr/bin/time -v -o "$WORK/$tag.time" \
    "$BIN" run "$input" -o "$WORK/$tag.out.csv" --force --no-progress --no-bom \
    --rate 1000000000 --concurrency 64 --summary-json "$WORK/$tag.json" "$@" 2>"$WORK/$tag.stderr" || {
      say "run $tag failed ($?)"; cat "$WORK/$tag.stderr" >&2; exit 1; }
}
json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
cpu_secs() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.3f", u+s}' "$1"; }

say "1: seven days, with --reuse-within 7d and without ..."
printf '| day | requests with reuse (reused rows, retries) | requests without reuse | ratio |\n|---|---|---|---|\n' >"$WORK/days.md"
total_with=0; total_without=0; later_with=0; later_without=0
for day in 1 2 3 4 5 6 7; do
  run_client "with$day" "$WORK/day$day.csv" --history "$WORK/reuse.sqlite" --reuse-within 7d
  run_client "without$day" "$WORK/day$day.csv"
  with=$(json "$WORK/with$day.json" requests); without=$(json "$WORK/without$day.json" requests)
  printf '| %s | %s (%s, %s) | %s | %.2f |\n' "$day" "$with" "$(json "$WORK/with$day.json" reused)" \
    "$(json "$WORK/with$day.json" retries)" "$without" "$(python3 -c "print($with / $without)")" >>"$WORK/days.md"
  total_with=$((total_with + with)); total_without=$((total_without + without))
  if [ "$day" -gt 1 ]; then later_with=$((later_with + with)); later_without=$((later_without + without)); fi
done
printf '| all 7 | %s | %s | %.2f |\n| days 2-7 | %s | %s | %.2f |\n' \
  "$total_with" "$total_without" "$(python3 -c "print($total_with / $total_without)")" \
  "$later_with" "$later_without" "$(python3 -c "print($later_with / $later_without)")" >>"$WORK/days.md"
cat "$WORK/days.md"

say "2: CPU per row, 50,000 new vehicles, $ROUNDS rounds ..."
none=(); record=(); lookup=()
for round in $(seq "$ROUNDS"); do
  run_client none "$WORK/fresh.csv"
  none+=("$(cpu_secs "$WORK/none.time")")
  # Each round on a copy of the seven days' history, so the new vehicles are new every time.
  cp "$WORK/reuse.sqlite" "$WORK/record.sqlite"; rm -f "$WORK/record.sqlite-wal" "$WORK/record.sqlite-shm"
  run_client record "$WORK/fresh.csv" --history "$WORK/record.sqlite"
  record+=("$(cpu_secs "$WORK/record.time")")
  cp "$WORK/reuse.sqlite" "$WORK/lookup.sqlite"; rm -f "$WORK/lookup.sqlite-wal" "$WORK/lookup.sqlite-shm"
  run_client lookup "$WORK/fresh.csv" --history "$WORK/lookup.sqlite" --reuse-within 7d
  lookup+=("$(cpu_secs "$WORK/lookup.time")")
  [ "$(json "$WORK/lookup.json" reused)" = 0 ] || { say "a new vehicle was reused"; exit 1; }
  say "  round $round: none ${none[-1]} s, record ${record[-1]} s, record+lookup ${lookup[-1]} s"
done
python3 - "${none[*]}" "${record[*]}" "${lookup[*]}" <<'PY'
import statistics, sys
none, record, lookup = (statistics.median(map(float, a.split())) for a in sys.argv[1:4])
us = lambda s: s / 50_000 * 1e6
print(f"| CPU per row (µs, user+sys, median of rounds) | no history {us(none):.1f} | --history {us(record):.1f} ({record / none - 1:+.1%}) | --history --reuse-within 7d {us(lookup):.1f} ({lookup / none - 1:+.1%}; lookups alone {lookup / record - 1:+.1%}) |")
PY

kill "$SANDBOX_PID"; wait "$SANDBOX_PID" 2>/dev/null || true; SANDBOX_PID=
if [ "$N_LOOKUP" != 0 ]; then
  say "3: a history of $N_HISTORY answers (filled once into target/history-10m.sqlite, then reused) ..."
  target/release/examples/history_lookup "target/history-$((N_HISTORY / 1000000))m.sqlite" "$N_HISTORY" "$N_LOOKUP"
fi
