#!/usr/bin/env bash
# Installs what the test suite needs from Debian's packages, once: the real
# servers the integration tests start on loopback. Safe to run again.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]] || need+=(redis-server)
# PostgreSQL's server binaries (initdb, postgres), which internal/pgtest runs
# as the postgres user in each test's own directory. Debian 12's
# "postgresql" is postgresql-15.
have_postgres() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    [[ -x $bin/postgres && -x $bin/initdb ]] && return 0
  done
  return 1
}
have_postgres || need+=(postgresql)
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] || need+=(nats-server)
# sipp (Debian's sip-tester) drives the SIP edge's tests and `convene bench
# sip`; Kamailio 5.6 with its SQLite and PostgreSQL modules is what that
# bench compares the edge with (accounting to SQL through db_sqlite, or
# db_postgres with --postgres).
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
# Chromium drives the console's browser tests (headless, through chromedp).
command -v chromium >/dev/null 2>&1 || [[ -x /usr/bin/chromium ]] || need+=(chromium)
if ! command -v kamailio >/dev/null 2>&1 || [[ -z $(find /usr/lib -path '*kamailio/modules/db_sqlite.so' 2>/dev/null | head -1) ]] \
  || [[ -z $(find /usr/lib -path '*kamailio/modules/db_postgres.so' 2>/dev/null | head -1) ]]; then
  need+=(kamailio kamailio-sqlite-modules kamailio-postgres-modules)
fi

if ((${#need[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${need[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${need[*]}"

# The packages' own services are not wanted (the tests start their own
# servers): keep apt from starting them, where nothing else has said so.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 0755 "$policy"
  made_policy=1
fi
cleanup() { if [[ -n $made_policy ]]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

if ! $sudo apt-get install -y --no-install-recommends "${need[@]}"; then
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi
