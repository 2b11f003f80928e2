#!/usr/bin/env bash
# Starts the split deployment on loopback: a nats-server and a
# redis-server (Debian's packages), then one `convene host` process per
# host file of this directory. Ctrl-C (or SIGTERM) stops what it started.
#
#   deploy/split/run.sh             # builds bin/convene if CONVENE is not set
#   CONVENE=/path/to/convene RUN_DIR=/tmp/split deploy/split/run.sh
#
# Everything it writes (credentials, data, logs, the API token) goes to
# RUN_DIR, a new temporary directory by default.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
run=${RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/convene-split.XXXXXX")}
mkdir -p "$run/logs" "$run/redis" "$run/data"

for bin in nats-server redis-server; do
	if ! command -v "$bin" >/dev/null; then
		echo "run.sh: $bin is not installed (apt-get install $bin)" >&2
		exit 1
	fi
done
convene=${CONVENE:-}
if [ -z "$convene" ]; then
	convene="$run/convene"
	echo "building convene into $convene"
	(cd "$here/../.." && go build -o "$convene" ./cmd/convene)
fi

pids=()
stop() {
	trap - INT TERM EXIT
	# Last started first; only the processes this script started.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap stop INT TERM EXIT

# wait_port HOST PORT WHAT: until something listens there (30 s at most).
wait_port() {
	for _ in $(seq 300); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "run.sh: $3 does not listen on $1:$2; see $run/logs" >&2
	exit 1
}

# The host files and the topology, with an API token of this run's own.
cp "$here"/*.yaml "$run/"
token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
sed -i "s/REPLACE-with-a-secret-of-at-least-16-characters/$token/" "$run/topology.yaml"
umask 077
echo "$token" >"$run/token"

# The bus: nats-server with one nkey user per role, from the credentials
# `convene nats-config` makes in creds/ (one <role>.creds per role).
"$convene" nats-config --creds "$run/creds" --config "$run/topology.yaml" >"$run/auth.conf"
cat >"$run/nats.conf" <<EOF
listen: 127.0.0.1:4223
max_payload: 8388608
include auth.conf
EOF
nats-server -c "$run/nats.conf" >"$run/logs/nats.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 4223 nats-server

# The store: redis-server with its append-only file, so that it keeps
# the platform's state across its own restarts.
redis-server --bind 127.0.0.1 --port 6380 --dir "$run/redis" --appendonly yes --save "" >"$run/logs/redis.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 6380 redis-server

# The hosts, each a process of its own, run from $run (their paths are
# relative to it).
for h in control sched-a sched-b nodes breakout api; do
	(cd "$run" && exec "$convene" host --config "$run/$h.yaml") >"$run/logs/$h.log" 2>&1 &
	pids+=($!)
done
wait_port 127.0.0.1 8081 "the API host"
wait_port 127.0.0.1 8082 "the breakout host"

cat <<EOF
The split deployment runs (logs in $run/logs):
  nats-server  nats://127.0.0.1:4223 (credentials in $run/creds)
  redis-server redis://127.0.0.1:6380
  API          http://127.0.0.1:8081   (breakout rooms: http://127.0.0.1:8082)
  token        in $run/token

Try:
  export CONVENE_API=http://127.0.0.1:8081 CONVENE_TOKEN=\$(cat $run/token)
  $convene host status
  $convene conf create --name standup --domain demo --scale 8 --resolution 720p --duration 30
  $convene host stop convene.scheduler --host sched-a
Ctrl-C stops everything.
EOF
wait
