#!/usr/bin/env bash
# Guide benchmark (issue: guides): a 10,000-channel x 2-day guide (960,000 programmes,
# generated, never committed) cut down to the 1,000 channels of a playlist, by lineup and by
# tv_grep (Debian xmltv-util) in the same run; prints median time and peak RSS of each and the
# ratio.
#
#   benches/guide-vs-tv_grep.sh [GUIDE_CHANNELS] [DAYS] [PLAYLIST_CHANNELS]
set -euo pipefail
cd "$(dirname "$0")/.."
guide_channels=${1:-10000}; days=${2:-2}; playlist=${3:-1000}
runs=${RUNS:-3}
command -v tv_grep >/dev/null || { echo "tv_grep missing: apt-get install xmltv-util"; exit 1; }

cargo build --release -q --bin lineup --example synth
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The playlist's ids ch0..ch999 are the first 1,000 of the guide's 10,000.
./target/release/examples/synth "$work" "$playlist" 1 "$guide_channels" "$days"
cat > "$work/lineup.toml" <<TOML
[[source]]
name = "s0"
m3u = "s0.m3u"

[[epg]]
name = "guide"
xmltv = "guide.xml"

[[proxy]]
name = "p"
sources = ["s0"]
m3u = "p.m3u"
epg = ["guide"]
epg_match = "id"
xmltv = "p.xml"
epg_days = { past = 36500, future = 36500 }
TOML
ids=$(grep -o 'tvg-id="[^"]*"' "$work/s0.m3u" | cut -d'"' -f2 | sort -u)
# One anchored alternation of the playlist's ids (tv_grep ANDs repeated tests).
grep_args=(--channel-id-exp "^($(echo "$ids" | sed 's/\./\\./g' | paste -sd'|'))\$")

measure() { # label, command...
  local label=$1; shift
  local times=() rss=()
  for ((r = 1; r <= runs; r++)); do
    rm -f "$work"/lineup.db*
    /usr/bin/time -f "%e %M" -o "$work/t" "$@" > /dev/null 2> "$work/err" || { cat "$work/err"; exit 1; }
    read -r t m < "$work/t"; times+=("$t"); rss+=("$m")
  done
  local mt mr
  mt=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  mr=$(printf '%s\n' "${rss[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$label: median ${mt}s, peak RSS $((mr / 1024)) MiB (of $runs runs)"
  eval "${label//[^a-z_]/_}_t=$mt"
}
echo "guide: $guide_channels channels x $days days, playlist: $playlist channels ($(echo "$ids" | wc -l) ids)"
measure lineup ./target/release/lineup build -q "$work/lineup.toml"
measure tv_grep tv_grep "${grep_args[@]}" --output "$work/grep.xml" "$work/guide.xml"
echo "programmes kept: lineup $(grep -c '<programme' "$work/out/p.xml"), tv_grep $(grep -c '<programme' "$work/grep.xml")"
awk -v a="$lineup_t" -v b="$tv_grep_t" 'BEGIN { printf "ratio: tv_grep / lineup = %.1f\n", b / a }'
