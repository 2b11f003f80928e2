#!/usr/bin/env bash
# Runs every fuzz target of the module for a few seconds each (FUZZTIME,
# default 1s): the decoders of outside input (REST bodies, queries, paths,
# bus messages, names, breakout tickets). Their seed corpora also run with
# the ordinary tests; this adds a short search for new failing inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-1s}
grep -rl --include='*_test.go' '^func Fuzz' internal | sort | while read -r file; do
  pkg=./$(dirname "$file")
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' | while read -r target; do
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz-$$.log 2>&1 || {
      cat /tmp/fuzz-$$.log; rm -f /tmp/fuzz-$$.log; exit 1; }
  done
done
rm -f /tmp/fuzz-$$.log
