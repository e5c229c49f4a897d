package indexer

import "errors"

// Errors that ScanFile and CatchUp wrap.
var (
	ErrNoMeta     = errors.New("no session_meta line")
	ErrIDMismatch = errors.New("session_meta id disagrees with the file name")
	ErrShrunk     = errors.New("file is shorter than its indexed size")
)
