#!/usr/bin/env bash
# codex.sh installs the pinned Codex CLI from npm into a cache directory
# outside the repository (reused when already there) and prints the path of
# its native binary on stdout. Everything else goes to stderr.
#
#   CODEX_VERSION   the version to install (default 0.169.0)
#   SPOOL_CACHE     the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/spool)
#
# It runs Codex only as `unshare -n <codex> --version`, to check the install.
set -euo pipefail

version="${CODEX_VERSION:-0.169.0}"
cache="${SPOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spool}"
dir="$cache/codex-$version"

find_binary() {
	find "$dir/node_modules" -path '*/vendor/*/bin/codex' -type f 2>/dev/null | head -n 1
}

bin="$(find_binary || true)"
if [[ -z "$bin" ]]; then
	if ! command -v npm >/dev/null 2>&1; then
		echo "codex.sh: npm is not installed; install Node.js and npm, then rerun" >&2
		exit 1
	fi
	mkdir -p "$dir"
	echo "codex.sh: installing @openai/codex@$version into $dir" >&2
	if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
		"@openai/codex@$version" >&2; then
		echo "codex.sh: npm could not install @openai/codex@$version (is the npm registry reachable?)" >&2
		exit 1
	fi
	bin="$(find_binary || true)"
	if [[ -z "$bin" ]]; then
		echo "codex.sh: installed @openai/codex@$version but found no native binary under $dir/node_modules" >&2
		exit 1
	fi
fi

if ! got="$(unshare -n "$bin" --version 2>/dev/null)" || [[ "$got" != *"$version"* ]]; then
	echo "codex.sh: $bin reports version '${got:-?}', want $version; remove $dir and rerun" >&2
	exit 1
fi
echo "$bin"
