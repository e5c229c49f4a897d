#!/usr/bin/env bash
# make crash: SIGKILL rounds against the real server, then every failure
# point of every writing operation and a power loss after each of them
# through the fault-injecting storage layer (rolloutfs/faultfs).
set -euo pipefail
cd "$(dirname "$0")/.."
SPOOL_CRASH_KILLS="${SPOOL_CRASH_KILLS:-25}" go test -count=1 -run 'TestCrash$' -v ./crashtest/ |
	grep -E '^(--- |FAIL|ok|PASS)|round [0-9]+:'
go test -count=1 -run 'TestFaultPoints$|TestPowerLoss$|TestPowerLossDuringSync$|TestPurgeFaultPoints$|TestRevertFaultPoints$|TestRevertPowerLoss$|TestEndedRecordFaultPoints$' -v ./crashtest/ |
	grep -E '^(--- (PASS|FAIL): Test[A-Za-z]+ |FAIL|ok|PASS)|covered|power lost|^\s+--- FAIL'
