// Package rollout reads and writes Codex-compatible rollout files: append-only
// JSONL logs of one agent conversation ("thread"), one JSON object per line.
//
// The package knows the format and nothing else: it has no notion of an
// index, a store or a server. Its promises are:
//
//   - Reading is streaming and lossless: every complete line is yielded with
//     its raw bytes and byte offset; lines it does not understand are kept
//     byte for byte; a last line without its newline is a torn tail and is
//     not part of the thread.
//   - User messages are counted exactly as Codex counts them (see
//     docs/CODEX.md): setup messages are skipped, and rollback markers
//     remove the last counted messages of a legacy history.
//
// The package does no I/O of its own: appending whole lines, cutting a torn
// tail and making an append durable under a sync policy are rolloutfs's.
package rollout
