#!/usr/bin/env bash
# Scale run: generate N channels over S local sources (and optionally a guide of C channels x D
# days), build them with the release binary under /usr/bin/time -v, print channels/s and peak
# RSS. Nothing generated is kept: it lives in a temporary directory.
#
#   benches/scale.sh CHANNELS SOURCES [GUIDE_CHANNELS DAYS] [-- extra lineup build flags]
#   benches/scale.sh 100000 1
#   RUNS=5 benches/scale.sh 1000000 4
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
  if [ -n "$guide_channels" ]; then
    printf 'epg = ["guide"]\nxmltv = "scale.xml"\n\n[[epg]]\nname = "guide"\nxmltv = "guide.xml"\n'
  fi
} > "$work/lineup.toml"

echo "input: $channels channels in $sources source(s), $(du -sh "$work" | cut -f1) on disk"
times=(); rss=()
for ((r = 1; r <= runs; r++)); do
  rm -f "$work/lineup.db"*
  /usr/bin/time -v ./target/release/lineup build -q "$work/lineup.toml" "$@" 2> "$work/time.txt" || {
    cat "$work/time.txt"; exit 1; }
  t=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  m=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  times+=("$t"); rss+=("$m")
  echo "run $r: ${t}s, peak RSS $((m / 1024)) MiB"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mt=$(median "${times[@]}"); mr=$(median "${rss[@]}")
echo "median: ${mt}s, $(awk -v n="$channels" -v t="$mt" 'BEGIN { printf "%.0f", n / t }') channels/s, peak RSS $((mr / 1024)) MiB (of $runs runs)"
if [ -n "$guide_channels" ]; then
  programmes=$((guide_channels * days * 48))
  echo "guide: $guide_channels channels x $days days = $programmes programmes, $(awk -v n="$programmes" -v t="$mt" 'BEGIN { printf "%.0f", n / t }') programmes/s"
fi
