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
cleanup() {
	scripts/s3.sh stop "$work/s3" || true
	scripts/pg.sh stop "$work/pg" || true
	rm -rf "$work"
}
trap cleanup EXIT

# Benchmarks compare with a local backend that fsyncs: PostgreSQL must too.
[ "${1:-}" = bench ] && export PG_FSYNC=on
SPOOL_TEST_PG=$(scripts/pg.sh start "$work/pg" "$port")
export SPOOL_TEST_PG
SPOOL_TEST_S3=$(scripts/s3.sh start "$work/s3" "$s3port")
export SPOOL_TEST_S3
echo "test-distributed: PostgreSQL at $SPOOL_TEST_PG, versitygw at $SPOOL_TEST_S3" >&2

if [ "${1:-}" = bench ]; then
	# make bench-distributed: the benchmarks behind the tag, side by side
	# with the local backend in one run.
	go test -run '^$' -bench "${BENCH:-Distributed}" -benchtime "${BENCHTIME:-4000x}" -count "${COUNT:-3}" -tags distributed ./bench/
	exit
fi

# Only the packages that have distributed tests, so the rest of the suite
# does not run twice.
pkgs=$(grep -rl --include='*_test.go' '^//go:build distributed' . | xargs -n1 dirname | sort -u)
[ -n "$pkgs" ] || { echo "test-distributed: no tests behind the distributed tag" >&2; exit 1; }
# TestSurvivesRestarts stops and starts the servers: it runs alone, after
# the others, told where they live.
go test -race -count=1 -tags distributed -skip '^TestSurvivesRestarts$' $pkgs
SPOOL_TEST_PG_DIR=$work/pg SPOOL_TEST_PG_PORT=$port SPOOL_TEST_S3_DIR=$work/s3 SPOOL_TEST_S3_PORT=$s3port \
	go test -race -count=1 -tags distributed -run '^TestSurvivesRestarts$' ./clustertest/
