#!/usr/bin/env bash
# Scale run: generate N channels over S local sources (and optionally a guide of C channels x D
# days), build them cold (no database) with the release binary under /usr/bin/time -v, and print
# medians of wall time, CPU time (user+sys), channels/s and peak RSS, each stage's time (from the
# run reports; needs jq), the ratio to the floor (`wc -l` over the same inputs), and a
# rebuild with nothing changed, with and without --if-changed. Nothing generated is kept: it
# lives in a temporary directory.
#
#   benches/scale.sh CHANNELS SOURCES [GUIDE_CHANNELS DAYS] [-- extra lineup build flags]
#   benches/scale.sh 100000 1
#   RUNS=5 benches/scale.sh 1000000 4
#   PROXY_TOML='numbering = { mode = "sticky" }' benches/scale.sh 10000000 4 -- --memory-limit 256MiB
# PROXY_TOML: extra lines for the proxy (numbering, sort, dedupe...).
set -euo pipefail
cd "$(dirname "$0")/.."

channels=${1:?CHANNELS}; sources=${2:?SOURCES}; shift 2
guide_channels=""; days=""
if [ $# -ge 2 ] && [ "$1" != "--" ]; then guide_channels=$1; days=$2; shift 2; fi
[ "${1:-}" = "--" ] && shift
runs=${RUNS:-3}
# The synthetic guide starts at 2026-11-22 00:00 UTC; pin the build clock to noon that day so
# the default epg_days window (1 day back, 7 ahead) keeps it whenever this runs.
export LINEUP_NOW=1795348800

cargo build --release -q --bin lineup --example synth
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./target/release/examples/synth "$work" "$channels" "$sources" $guide_channels $days

{
  for ((s = 0; s < sources; s++)); do
    printf '[[source]]\nname = "s%d"\nm3u = "s%d.m3u"\n\n' "$s" "$s"
  done
  printf '[[proxy]]\nname = "scale"\nsources = ['
  for ((s = 0; s < sources; s++)); do printf '"s%d"%s' "$s" "$([ $s -lt $((sources - 1)) ] && echo ', ')"; done
  printf ']\nm3u = "scale.m3u"\n'
  [ -n "${PROXY_TOML:-}" ] && printf '%s\n' "$PROXY_TOML"
  if [ -n "$guide_channels" ]; then
    printf 'epg = ["guide"]\nxmltv = "scale.xml"\n\n[[epg]]\nname = "guide"\nxmltv = "guide.xml"\n'
  fi
} > "$work/lineup.toml"

echo "input: $channels channels in $sources source(s), $(du -sh "$work" | cut -f1) on disk"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }

# The floor: reading every input once, as `wc -l` does (page cache warm, as for the builds).
inputs=("$work"/*.m3u); [ -n "$guide_channels" ] && inputs+=("$work/guide.xml")
wc -l "${inputs[@]}" > /dev/null
floors=()
for ((r = 1; r <= runs; r++)); do
  s0=$(date +%s.%N); wc -l "${inputs[@]}" > /dev/null; s1=$(date +%s.%N)
  floors+=("$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.3f", b - a }')")
done
floor=$(median "${floors[@]}")

# One build under /usr/bin/time -v: sets t (wall s), m (peak RSS KiB), c (user+sys s).
timed() {
  /usr/bin/time -v ./target/release/lineup build -q "$work/lineup.toml" "$@" > /dev/null 2> "$work/time.txt" || {
    cat "$work/time.txt"; exit 1; }
  t=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | secs)
  m=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  c=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$work/time.txt")
}

times=(); rss=(); cpu=()
for ((r = 1; r <= runs; r++)); do
  rm -f "$work/lineup.db"*
  timed --report "$work/report.$r.json" "$@"
  times+=("$t"); rss+=("$m"); cpu+=("$c")
  echo "run $r (cold): ${t}s, CPU ${c}s, peak RSS $((m / 1024)) MiB"
done
mt=$(median "${times[@]}"); mr=$(median "${rss[@]}")
echo "median: ${mt}s, CPU $(median "${cpu[@]}")s, $(awk -v n="$channels" -v t="$mt" 'BEGIN { printf "%.0f", n / t }') channels/s, peak RSS $((mr / 1024)) MiB (of $runs runs)"
echo "floor (wc -l over the inputs): ${floor}s; build / floor = $(awk -v a="$mt" -v b="$floor" 'BEGIN { printf "%.0f", a / (b > 0 ? b : 0.001) }')x"
if [ -n "$guide_channels" ]; then
  programmes=$((guide_channels * days * 48))
  echo "guide: $guide_channels channels x $days days = $programmes programmes, $(awk -v n="$programmes" -v t="$mt" 'BEGIN { printf "%.0f", n / t }') programmes/s"
fi

# Per stage, median over the runs (ms, from each run's report). Sources are fetched and
# stored concurrently with each other (a guide parses on a worker), so their times overlap.
echo "stages (median ms):"
jq -rs 'def med: sort | .[(length - 1) / 2 | floor];
  [.[] | [(.sources[] | {k: "source \(.name) (\(.kind))", v: .duration_ms}),
          (.proxies[] as $p | $p.stages[] | {k: "proxy \($p.name): \(.name)", v: .duration_ms})]]
  | . as $runs | $runs[0][].k as $k | "\($k)\t\([$runs[][] | select(.k == $k) | .v] | med)"' \
  "$work"/report.*.json | awk -F'\t' '{ printf "  %-36s %6d\n", $1, $2 }'

# Nothing changed: a rebuild on the same database, and the same with --if-changed.
warm=(); warmc=(); skip=(); skipc=()
for ((r = 1; r <= runs; r++)); do
  timed "$@"; warm+=("$t"); warmc+=("$c")
  timed --if-changed "$@"; skip+=("$t"); skipc+=("$c")
done
echo "nothing changed: rebuild $(median "${warm[@]}")s (CPU $(median "${warmc[@]}")s), --if-changed $(median "${skip[@]}")s (CPU $(median "${skipc[@]}")s)"
