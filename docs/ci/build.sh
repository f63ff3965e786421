#!/usr/bin/env bash
# CI job body: build the line-up and keep the playlist, guide and report as artifacts.
# Fails the job only on exit codes that mean failure: 0 (success) and 3 (degraded: a source
# failed and its last good copy was used) pass; 1, 2, 4 and 5 fail.
#
#   LINEUP=lineup CONFIG=lineup.toml ARTIFACTS=artifacts docs/ci/build.sh
set -uo pipefail
lineup=${LINEUP:-lineup}
config=${CONFIG:-lineup.toml}
artifacts=${ARTIFACTS:-artifacts}
mkdir -p "$artifacts"

"$lineup" build "$config" --output-dir "$artifacts" --report "$artifacts/report.json"
code=$?
case $code in
  0) echo "lineup: built" ;;
  3) echo "::warning::lineup: degraded build (a source failed; its last good copy was used), see report.json" ;;
  *) echo "::error::lineup build failed with exit code $code"; exit "$code" ;;
esac
