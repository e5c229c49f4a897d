package indexer

import "errors"

// Errors that ScanFile and CatchUp wrap.
var (
	ErrNoMeta     = errors.New("no session_meta line")
	ErrIDMismatch = errors.New("session_meta id disagrees with the file name")
	ErrShrunk     = errors.New("file is shorter than its indexed size")
	// ErrChanged reports a file whose indexed part was rewritten: the byte
	// before its indexed size is no longer a newline, or its size is as
	// indexed but it was modified since. Like ErrShrunk, the caller
	// rescans the whole file.
	ErrChanged = errors.New("file changed before its indexed size")
)

// ErrBaseMissing reports a history that continues another thread's (a
// meta with history_base) whose base is not indexed: index the base
// first. A base that is gone is a dangling base.
var ErrBaseMissing = errors.New("base thread is not indexed")

// ErrBrokenBase reports a revert segment whose history_base lies in no
// indexed file of its thread.
var ErrBrokenBase = errors.New("history base is outside the thread's files")
