// Package crashtest holds spool's reliability tests: a crash test that
// kills the real spoold binary under load and checks that nothing it
// acknowledged is lost, and table tests of hostile input at the manager and
// indexer levels. It has no code of its own outside its tests.
package crashtest
