#!/usr/bin/env bash
# make test-distributed: start a private PostgreSQL (scripts/pg.sh) and an S3
# gateway (scripts/s3.sh) on loopback,
# run every test behind the `distributed` build tag against it with the race
# detector, stop them. The tests read SPOOL_TEST_PG and SPOOL_TEST_S3 and fail
# without them.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/spool-distributed.XXXXXX")
chmod 0755 "$work"
port=${SPOOL_TEST_PG_PORT:-$((40000 + RANDOM % 20000))}
s3port=${SPOOL_TEST_S3_PORT:-$((port + 1))}
pgdir=$work/pg
if [ "${1:-}" = bench ]; then
	# Benchmarks compare with a local backend that fsyncs: PostgreSQL must
	# too. Their cluster is kept between runs (the 1,000,000-thread list
	# database takes minutes to generate), outside the repository where the
	# postgres user can reach it; one run at a time uses it.
	export PG_FSYNC=on
	pgdir=${SPOOL_BENCH_PG_DIR:-${TMPDIR:-/tmp}/spool-bench-pg15}
	mkdir -p "$(dirname "$pgdir")"
	exec 9>"$pgdir.lock"
	if ! flock -n 9; then
		echo "test-distributed: $pgdir is in use by another run: a new cluster (the list database is generated again)" >&2
		pgdir=$work/pg
	fi
fi
cleanup() {
	scripts/s3.sh stop "$work/s3" || true
	scripts/pg.sh stop "$pgdir" || true
	rm -rf "$work"
}
trap cleanup EXIT

SPOOL_TEST_PG=$(scripts/pg.sh start "$pgdir" "$port" 9>&-)
export SPOOL_TEST_PG
SPOOL_TEST_S3=$(scripts/s3.sh start "$work/s3" "$s3port" 9>&-)
export SPOOL_TEST_S3
echo "test-distributed: PostgreSQL at $SPOOL_TEST_PG, versitygw at $SPOOL_TEST_S3" >&2

if [ "${1:-}" = bench ]; then
	# make bench-distributed: the benchmarks behind the tag, side by side
	# with the local backend in one run (BenchmarkDistributedAppend
	# interleaves the backends itself and reports medians).
	echo "test-distributed: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start" >&2
	# The append phases get more appends than the others get iterations:
	# shorter ones measure the load more than the backends.
	if [ -n "${BENCH:-}" ]; then
		go test -run '^$' -bench "$BENCH" -benchtime "${BENCHTIME:-4000x}" -count "${COUNT:-3}" -timeout 60m -tags distributed ./bench/
	else
		go test -run '^$' -bench 'DistributedAppend' -benchtime "${APPEND_BENCHTIME:-16000x}" -count "${COUNT:-3}" -timeout 60m -tags distributed ./bench/
		go test -run '^$' -bench 'Distributed(List|Fork)' -benchtime "${BENCHTIME:-4000x}" -count "${COUNT:-3}" -timeout 60m -tags distributed ./bench/
	fi
	echo "test-distributed: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2
	exit
fi

# Only the packages that have distributed tests, so the rest of the suite
# does not run twice.
pkgs=$(grep -rl --include='*_test.go' '^//go:build distributed' . | xargs -n1 dirname | sort -u)
[ -n "$pkgs" ] || { echo "test-distributed: no tests behind the distributed tag" >&2; exit 1; }
# TestSurvivesRestarts stops and starts the servers: it runs alone, after
# the others, told where they live.
go test ${RACE:--race} -count=1 -tags distributed -skip '^TestSurvivesRestarts$' $pkgs
SPOOL_TEST_PG_DIR=$pgdir SPOOL_TEST_PG_PORT=$port SPOOL_TEST_S3_DIR=$work/s3 SPOOL_TEST_S3_PORT=$s3port \
	go test ${RACE:--race} -count=1 -tags distributed -run '^TestSurvivesRestarts$' ./clustertest/
