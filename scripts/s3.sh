#!/usr/bin/env bash
# A private S3-compatible object store on 127.0.0.1 for the distributed
# backend's multi-process tests: versitygw (a production S3 gateway) over a
# directory, built once into a cache outside the repository.
#
#   scripts/s3.sh start DIR [PORT]   build (once) and start; prints the endpoint URL
#   scripts/s3.sh stop DIR           stop it
#
# Credentials: access key "spool", secret "spool-secret" (loopback only).
set -euo pipefail

version=v1.8.0
cache=${SPOOL_CACHE:-$HOME/.cache/spool}/versitygw-${version#v}
bin=$cache/versitygw

die() { echo "scripts/s3.sh: $*" >&2; exit 1; }

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: s3.sh start DIR [PORT] | s3.sh stop DIR"

case "$cmd" in
start)
	port=${3:-57070}
	if [ ! -x "$bin" ]; then
		echo "scripts/s3.sh: building versitygw $version into $cache (several minutes, once)" >&2
		mkdir -p "$cache"
		GOBIN=$cache go install "github.com/versity/versitygw/cmd/versitygw@$version" >&2 ||
			die "go install versitygw@$version failed (is the Go module proxy reachable?)"
	fi
	mkdir -p "$dir/data"
	"$bin" --access spool --secret spool-secret --port "127.0.0.1:$port" posix "$dir/data" \
		>"$dir/server.log" 2>&1 &
	echo $! >"$dir/pid"
	# Readiness: poll the port until it answers, for at most 30 s.
	for _ in $(seq 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "http://127.0.0.1:$port"
			exit 0
		fi
		kill -0 "$(cat "$dir/pid")" 2>/dev/null || die "versitygw exited: $(tail -n 5 "$dir/server.log")"
		sleep 0.1
	done
	die "versitygw did not answer on 127.0.0.1:$port within 30 s"
	;;
stop)
	[ -f "$dir/pid" ] || exit 0
	pid=$(cat "$dir/pid")
	kill "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	rm -f "$dir/pid"
	;;
*)
	die "unknown command $cmd"
	;;
esac
