#!/usr/bin/env bash
# Runs the paper's protocols (issue 14) one after another at the laptop budget, each into
# bench/results/paper/<protocol>/work, and writes each report beside its work folder.
# Resumable: rerun the same command after an interruption; finished runs are skipped.
#   bash bench/reproduce.sh [protocol ...]     # default: fig3 section63 table2 table1
# ONLY="pattern ..." runs just the runs whose ids match (nafrl sweep run --only), e.g.
#   ONLY="naf-reacher-v1-none-* naf-reacher-v1-imr-s*" bash bench/reproduce.sh table2
# DEADLINE=HH:MM (or 2h30m) starts only the runs estimated to end before it (nafrl sweep run
# --deadline): on a machine with a time limit, no run is started only to be cut off.
# CPUS=LIST (taskset's list, e.g. 0 or 2-3) keeps the sweep and its workers on those cores:
# two streams of one worker each, one per core, train about 10% faster than when the
# scheduler moves them (measured 2026-12-04), with the same numbers (workers are
# single-threaded, so the cores they run on do not change their arithmetic).
set -euo pipefail
set -f  # no globbing: ONLY holds patterns for nafrl, not for the shell
cd "$(dirname "$0")/.."
NAFRL=${NAFRL:-.venv/bin/nafrl}
WORKERS=${WORKERS:-2}
[ $# -gt 0 ] || set -- fig3 section63 table2 table1
for name in "$@"; do
  out=bench/results/paper/$name
  mkdir -p "$out"
  echo "== $name ($(date -u +%FT%TZ))"
  # shellcheck disable=SC2086  # ONLY is a list of patterns
  ${CPUS:+taskset -c "$CPUS"} "$NAFRL" sweep run --paper "$name" --budget laptop --out "$out/work" --workers "$WORKERS" \
    ${ONLY:+--only $ONLY} ${DEADLINE:+--deadline $DEADLINE}
  "$NAFRL" sweep report "$out/work"
  cp "$out/work/report.md" "$out/work/report.json" "$out/"
  rm -rf "$out/figures" && cp -r "$out/work/figures" "$out/figures"
done
