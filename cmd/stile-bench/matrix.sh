#!/usr/bin/env bash
# The matrix of issue 10, item 5, run by `make bench`: stile serve pinned to
# CPU 1 and the driver to CPU 0 (taskset), on SQLite (a file in a temporary
# directory) and on PostgreSQL (a throwaway cluster, pinned with the server:
# on SQLite the database engine runs inside stile, so on PostgreSQL the
# database shares stile's core too), with each signing algorithm. Each run
# starts stile on a fresh database and writes a JSON report; the last step
# prints one summary table with every target.
#
#   matrix.sh BIN_DIR [stile-bench flags…]     e.g. BENCH_ARGS='-requests 5000'
#
# Environment: BENCH_OUT (default: a new temporary directory, printed),
# BENCH_ALGS (default "RS256 ES256 EdDSA"), BENCH_DATABASES (default
# "sqlite postgres"), BENCH_SERVER_CPUS (1), BENCH_DRIVER_CPUS (0),
# PG_BIN (default: the newest /usr/lib/postgresql/*/bin, or initdb on PATH).
set -euo pipefail

bin=$(cd "${1:?usage: matrix.sh BIN_DIR [stile-bench flags…]}" && pwd)
shift
out=${BENCH_OUT:-$(mktemp -d /tmp/stile-bench.XXXXXX)}
mkdir -p "$out"
algs=${BENCH_ALGS:-RS256 ES256 EdDSA}
databases=${BENCH_DATABASES:-sqlite postgres}
server_cpus=${BENCH_SERVER_CPUS:-1}
driver_cpus=${BENCH_DRIVER_CPUS:-0}
echo "stile-bench: reports in $out"

pg_dir=""
pg_run() { # run a PostgreSQL binary as the cluster's owner (initdb refuses root)
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$PG_BIN/$1" "${@:2}"; else "$PG_BIN/$1" "${@:2}"; fi
}
pg_stop() {
	if [ -n "$pg_dir" ]; then
		pg_run pg_ctl -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
		rm -rf "$pg_dir"
	fi
}
trap pg_stop EXIT

pg_start() {
	if [ -z "${PG_BIN:-}" ]; then
		if command -v initdb >/dev/null; then PG_BIN=$(dirname "$(readlink -f "$(command -v initdb)")")
		else PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1); fi
	fi
	[ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL binaries (apt-get install postgresql, or set PG_BIN)" >&2; exit 1; }
	pg_dir=$(mktemp -d /tmp/stile-bench-pg.XXXXXX)
	[ "$(id -u)" = 0 ] && chown postgres: "$pg_dir"
	pg_run initdb -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --no-sync --no-instructions >/dev/null
	pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	# The same settings as the tests' throwaway cluster (storage/storagetest): durability off, this is a benchmark.
	pg_run pg_ctl -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 start \
		-o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
	# Pin the cluster, every backend it forks later included, to the server's core.
	taskset -a -c -p "$server_cpus" "$(head -1 "$pg_dir/data/postmaster.pid")" >/dev/null
	echo "stile-bench: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port, pinned to CPU $server_cpus"
}

reports=()
for db in $databases; do
	[ "$db" = postgres ] && pg_start
	for alg in $algs; do
		name="$db-$alg"
		database=sqlite
		if [ "$db" = postgres ]; then
			database_name="bench_$(echo "$alg" | tr 'A-Z' 'a-z')"
			pg_run psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE $database_name" >/dev/null
			database="postgres://postgres@127.0.0.1:$pg_port/$database_name?sslmode=disable"
		fi
		taskset -c "$driver_cpus" "$bin/stile-bench" -launch -stile "$bin/stile" -database "$database" -alg "$alg" \
			-server-cpus "$server_cpus" -label "$name" -json "$out/$name.json" "$@" 2> >(sed -u "s/^/[$name] /" >&2) | tee "$out/$name.txt"
		reports+=("$out/$name.json")
	done
	[ "$db" = postgres ] && { pg_stop; pg_dir=""; }
done
"$bin/stile-bench" -summary "${reports[@]}" | tee "$out/summary.txt"
echo "stile-bench: reports in $out"
