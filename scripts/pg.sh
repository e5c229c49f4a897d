#!/usr/bin/env bash
# A private PostgreSQL 15 cluster on 127.0.0.1 for the distributed backend's
# tests: nothing outside DIR is touched, and nothing listens beyond loopback.
#
#   scripts/pg.sh start DIR [PORT]   initdb (once) and start; prints the DSN
#   scripts/pg.sh stop DIR           fast shutdown
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# postgres user (created by Debian's package). Where the binaries are
# missing, start installs postgresql-15 from apt (CI machines may lack it).
# fsync is off unless PG_FSYNC=on: tests need no power-loss durability, and
# benchmarks compared with the local backend's syncing policies set it on.
set -euo pipefail

die() { echo "scripts/pg.sh: $*" >&2; exit 1; }

pgbin() {
	for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
		[ -x "$d/pg_ctl" ] && { echo "$d"; return; }
	done
	command -v pg_ctl >/dev/null && { dirname "$(command -v pg_ctl)"; return; }
	return 1
}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

install_pg() {
	[ "$(id -u)" = 0 ] || die "PostgreSQL is missing and installing it needs root (apt-get install postgresql-15)"
	echo "scripts/pg.sh: installing postgresql-15 from apt" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >&2; } ||
		die "apt-get install postgresql-15 failed: the lines above say why"
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: pg.sh start DIR [PORT] | pg.sh stop DIR"

case "$cmd" in
start)
	port=${3:-55432}
	bin=$(pgbin) || { install_pg; bin=$(pgbin) || die "no pg_ctl after installing postgresql-15"; }
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
	chmod 0700 "$dir"
	if [ ! -f "$dir/PG_VERSION" ]; then
		as_owner "$bin/initdb" -A trust --no-sync -U postgres -D "$dir" >"$dir.initdb.log" 2>&1 ||
			die "initdb failed: $(tail -n 5 "$dir.initdb.log")"
	fi
	as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c max_connections=200" start >&2 ||
		die "pg_ctl start failed: $(tail -n 5 "$dir/server.log")"
	as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt \
		-c "SELECT 1 FROM pg_database WHERE datname = 'spool_test'" | grep -q 1 ||
		as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres spool_test
	echo "postgres://postgres@127.0.0.1:$port/spool_test?sslmode=disable"
	;;
stop)
	bin=$(pgbin) || die "no pg_ctl"
	[ -f "$dir/postmaster.pid" ] || exit 0
	as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >&2
	;;
*)
	die "unknown command $cmd"
	;;
esac
