#!/usr/bin/env bash
# Checks that spoold's OpenAPI document is precise enough for a generated
# TypeScript client: starts spoold on a temporary root, fetches the
# /openapi.json it serves, generates types with openapi-typescript, and
# type-checks scripts/tscheck/check.ts (which calls every route through
# openapi-fetch) with tsc --strict. The npm packages are installed once,
# pinned, into ${XDG_CACHE_HOME:-$HOME/.cache}/spool/npm (never into the
# repository); later runs need no network.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/spool/npm"
pkgs=(openapi-typescript@7.13.0 openapi-fetch@0.13.8 typescript@5.9.3)
stamp="$cache/tscheck/.installed-$(printf '%s\n' "${pkgs[@]}" | sha256sum | cut -c1-16)"

if ! command -v npm >/dev/null; then
	echo "ts-check: npm is not installed; install Node.js 20 or later" >&2
	exit 1
fi
if [ ! -f "$stamp" ]; then
	mkdir -p "$cache/tscheck"
	[ -f "$cache/tscheck/package.json" ] || echo '{"private":true}' >"$cache/tscheck/package.json"
	if ! (cd "$cache/tscheck" && npm install --no-audit --no-fund --cache "$cache/cache" "${pkgs[@]}" >"$cache/install.log" 2>&1); then
		echo "ts-check: could not install ${pkgs[*]} from the npm registry (is it reachable?); see $cache/install.log" >&2
		tail -5 "$cache/install.log" >&2
		exit 1
	fi
	touch "$stamp"
fi

work="$(mktemp -d "$cache/tscheck/work.XXXXXX")"
root="$(mktemp -d)"
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work" "$root"
}
trap cleanup EXIT

go build -o "$work/spoold" ./cmd/spoold
"$work/spoold" -root "$root/store" -addr 127.0.0.1:0 >"$work/spoold.log" 2>&1 &
pid=$!
addr=""
for _ in $(seq 100); do
	addr="$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$work/spoold.log" | head -1)"
	[ -n "$addr" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/spoold.log" >&2; exit 1; }
	sleep 0.1
done
if [ -z "$addr" ]; then
	echo "ts-check: spoold did not say where it listens" >&2
	cat "$work/spoold.log" >&2
	exit 1
fi
curl -fsS "http://$addr/openapi.json" -o "$work/openapi.json"

"$cache/tscheck/node_modules/.bin/openapi-typescript" "$work/openapi.json" -o "$work/spool.d.ts" >/dev/null
cp scripts/tscheck/check.ts "$work/check.ts"
if ! (cd "$work" && "$cache/tscheck/node_modules/.bin/tsc" --strict --noEmit --target es2022 \
	--module nodenext --moduleResolution nodenext --skipLibCheck check.ts); then
	echo "ts-check: the client generated from /openapi.json does not type-check (above)" >&2
	exit 1
fi
echo "ts-check: ok (the served /openapi.json types every route of scripts/tscheck/check.ts under tsc --strict)"
