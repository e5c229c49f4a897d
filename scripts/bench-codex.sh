#!/usr/bin/env bash
# Runs spool against the real Codex CLI (the pinned 0.169.0, installed by
# scripts/codex.sh into a cache outside the repository) on the same corpora
# and prints every sample, the medians, the ratios of medians and the goals
# of BENCHMARKS.md. Codex runs only inside `unshare -n`, with a temporary
# CODEX_HOME and OPENAI_API_KEY=sk-dummy. Not part of CI.
#
#   BENCH_CODEX_SCALE     1 (default): 10,000 threads, a 100 MiB thread, 5 repetitions
#                         (a few minutes on 2 cores); 10: 10,000 and 100,000 threads,
#                         a 1 GiB thread (Codex's 1 GiB fork peaks near 10 GB of RSS),
#                         3 repetitions
#   BENCH_CODEX_THREADS   thread counts, comma-separated (overrides the scale)
#   BENCH_CODEX_BIG_MB    size of the big thread in MiB (overrides the scale)
#   BENCH_CODEX_REPS      repetitions of each operation (overrides the scale)
#   BENCH_CODEX_ONLY      a regexp: run only the figures whose name matches
#   BENCH_OUT             file that keeps the output (default a temporary file)
#
# Corpora are cached in ${TMPDIR:-/tmp}/spool-bench-codex-v*-*; delete them
# to regenerate.
set -euo pipefail
cd "$(dirname "$0")/.."

scale="${BENCH_CODEX_SCALE:-1}"
case "$scale" in
1)
	: "${BENCH_CODEX_THREADS:=10000}"
	: "${BENCH_CODEX_BIG_MB:=100}"
	: "${BENCH_CODEX_REPS:=5}"
	;;
10)
	: "${BENCH_CODEX_THREADS:=10000,100000}"
	: "${BENCH_CODEX_BIG_MB:=1024}"
	: "${BENCH_CODEX_REPS:=3}"
	;;
*)
	echo "BENCH_CODEX_SCALE must be 1 or 10, not '$scale'" >&2
	exit 2
	;;
esac

codex="$(./scripts/codex.sh)"
bin="$(mktemp -d "${TMPDIR:-/tmp}/spool-bench-codex-bin.XXXXXX")"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/spoold ./bench/codexbench
out="${BENCH_OUT:-$(mktemp "${TMPDIR:-/tmp}/spool-bench-codex-out.XXXXXX")}"

{
	echo "# spool against Codex $("$codex" --version 2>/dev/null || true), BENCH_CODEX_SCALE=$scale, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "# machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(go version), load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# threads ${BENCH_CODEX_THREADS}; big thread ${BENCH_CODEX_BIG_MB} MiB; ${BENCH_CODEX_REPS} repetitions"
	echo "# output: $out"
	"$bin/codexbench" -codex "$codex" -spoold "$bin/spoold" -threads "$BENCH_CODEX_THREADS" \
		-big-mb "$BENCH_CODEX_BIG_MB" -reps "$BENCH_CODEX_REPS" -only "${BENCH_CODEX_ONLY:-}"
	echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
