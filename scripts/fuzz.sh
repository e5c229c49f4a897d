#!/usr/bin/env bash
# fuzz.sh FUZZTIME: run every fuzz target of the module for FUZZTIME each
# (a Go duration such as 10s, or Nx for N executions), one at a time: Go
# fuzzes one target per invocation. A crasher is kept by Go under the
# package's testdata/fuzz/FuzzX/ and then runs as a seed in plain `go test`.
# Exits non-zero if any target fails; prints a summary either way.
set -uo pipefail

fuzztime="${1:-${FUZZTIME:-20s}}"
go="${GO:-go}"
cd "$(dirname "$0")/.."

# Packages holding a fuzz target, found from the source so nothing is
# compiled twice; `go test -list` then names the targets exactly.
mapfile -t pkgs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . \
	| grep -v '/testdata/' | xargs -r -n1 dirname | sort -u)
if [ "${#pkgs[@]}" -eq 0 ]; then
	echo "fuzz: no fuzz targets found"
	exit 0
fi

passed=()
failed=()
for pkg in "${pkgs[@]}"; do
	if ! targets=$("$go" test -list '^Fuzz' "$pkg"); then
		echo "$targets"
		failed+=("$pkg (does not build)")
		continue
	fi
	for target in $(printf '%s\n' "$targets" | grep -E '^Fuzz'); do
		echo "=== fuzz $pkg $target for $fuzztime"
		if "$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
			passed+=("$pkg $target")
		else
			failed+=("$pkg $target")
		fi
	done
done

echo
echo "fuzz summary (fuzztime $fuzztime): ${#passed[@]} passed, ${#failed[@]} failed"
for p in "${passed[@]}"; do echo "  ok    $p"; done
for f in "${failed[@]}"; do echo "  FAIL  $f"; done
if [ "${#failed[@]}" -gt 0 ]; then
	echo "crashers, if any, are under each package's testdata/fuzz/: keep them, they run as seeds in go test"
	exit 1
fi
