#!/usr/bin/env bash
# Runs spool's benchmarks against their baselines (see BENCHMARKS.md) and
# prints every run, the medians and each figure as a ratio measured in this
# run. BENCH_SCALE=1 (default) runs reduced sizes in a few minutes on 2
# cores; BENCH_SCALE=10 runs the full sizes of the goals (1 GB rollout,
# 100,000 files, 1,000,000 index rows and threads; reference forks of a
# 100 MB and a 1 GB paginated thread; the full reindex also of as many
# paginated files, a quarter of them reference forks). Other values scale the
# reduced sizes linearly. Any BENCH_* size set in the environment wins.
#
# Extra knobs: BENCH_COUNT (runs per benchmark, default 5), BENCH_FILTER
# (a -bench regexp, default all figures), BENCH_OUT (file that keeps the raw
# output, default a temporary file). Generated corpora are cached in
# ${TMPDIR:-/tmp}/spool-bench-*; delete them to regenerate.
set -euo pipefail
cd "$(dirname "$0")/.."

scale="${BENCH_SCALE:-1}"
if ! [[ "$scale" =~ ^[0-9]+$ ]] || [ "$scale" -lt 1 ]; then
	echo "BENCH_SCALE must be a positive integer, not '$scale'" >&2
	exit 2
fi

if [ "$scale" -ge 10 ]; then
	: "${BENCH_BIG_MB:=1024}"
	: "${BENCH_REF_MB:=100,1024}"
	: "${BENCH_LIST_FILES:=100000}"
	: "${BENCH_LIST_ROWS:=1000000}"
	: "${BENCH_REINDEX_FILES:=10000}"
	: "${BENCH_MEM_THREADS:=250000,500000,1000000}"
	: "${BENCH_MEM_TOUCH:=100000}"
else
	: "${BENCH_BIG_MB:=$((100 * scale))}"
	: "${BENCH_REF_MB:=$((100 * scale))}"
	: "${BENCH_LIST_FILES:=$((10000 * scale))}"
	: "${BENCH_LIST_ROWS:=$((100000 * scale))}"
	: "${BENCH_REINDEX_FILES:=$((1000 * scale))}"
	: "${BENCH_MEM_THREADS:=$((10000 * scale)),$((25000 * scale)),$((50000 * scale))}"
	: "${BENCH_MEM_TOUCH:=$((10000 * scale))}"
fi
export BENCH_BIG_MB BENCH_REF_MB BENCH_LIST_FILES BENCH_LIST_ROWS BENCH_REINDEX_FILES BENCH_MEM_THREADS BENCH_MEM_TOUCH

count="${BENCH_COUNT:-5}"
filter="${BENCH_FILTER:-.}"
out="${BENCH_OUT:-$(mktemp "${TMPDIR:-/tmp}/spool-bench-out.XXXXXX")}"

echo "# spool benchmarks, BENCH_SCALE=$scale, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(go version)"
echo "# sizes: big rollout ${BENCH_BIG_MB} MB; reference forks of ${BENCH_REF_MB} MB; list ${BENCH_LIST_FILES} files; index ${BENCH_LIST_ROWS} rows;" \
	"reindex ${BENCH_REINDEX_FILES} files; memory ${BENCH_MEM_THREADS} threads touching ${BENCH_MEM_TOUCH}"
echo "# raw output: $out"

start=$(date +%s)
{
	# Figures 1-5: several timed runs each, baselines as sibling benchmarks.
	go test -run '^$' -bench "^Benchmark(Fork|ReferenceFork|ReferenceChain|Resume|List|ListIndex|Append|Reindex|ReindexIncremental|ColdStart|WatchLatency)\$/${filter}" \
		-count "$count" -timeout 120m ./bench/
	# Follow delay: append acknowledged to line delivered on a follow stream (p50/p99 ms).
	go test -run '^$' -bench "^BenchmarkFollowDelay\$" -benchtime 2000x -count "$count" -timeout 30m ./bench/
	# Figure 6: one probe process per run and index size.
	go test -run '^$' -bench "^BenchmarkMemory\$/${filter}" -benchtime 1x -count 3 -timeout 120m ./bench/
} 2>&1 | tee "$out" | go run ./bench/benchsum
echo "# total $(( $(date +%s) - start )) s"
