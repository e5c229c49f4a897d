#!/usr/bin/env bash
# make crash: SIGKILL rounds against the real server, then every failure
# point of every writing operation and a power loss after each of them
# through the fault-injecting storage layer (rolloutfs/faultfs). A passing
# run prints the rounds and the counts; a failing one prints its whole log
# (the seed to replay it, the clients' errors, spoold's last lines).
set -euo pipefail
cd "$(dirname "$0")/.."
log="$(mktemp "${TMPDIR:-/tmp}/spool-crash.XXXXXX")"
run() {
	local filter="$1"
	shift
	if ! "$@" >"$log" 2>&1; then
		grep -v '^=== ' "$log" || true
		echo "crash: failed; the whole log is $log" >&2
		exit 1
	fi
	grep -E "$filter" "$log" || true
}
run '^(--- |FAIL|ok|PASS)|round [0-9]+:|seed [0-9]+' \
	env SPOOL_CRASH_KILLS="${SPOOL_CRASH_KILLS:-25}" go test -count=1 -run 'TestCrash$' -v ./crashtest/
run '^(--- (PASS|FAIL): Test[A-Za-z]+ |FAIL|ok|PASS)|covered|power lost|^\s+--- FAIL' \
	go test -count=1 -run 'TestFaultPoints$|TestPowerLoss$|TestPowerLossDuringSync$|TestPurgeFaultPoints$|TestRevertFaultPoints$|TestRevertPowerLoss$|TestEndedRecordFaultPoints$' -v ./crashtest/
rm -f "$log"
