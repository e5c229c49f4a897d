//go:build !race

package store

// raceEnabled reports whether the race detector is on: measurements of
// time and memory mean little then.
const raceEnabled = false
