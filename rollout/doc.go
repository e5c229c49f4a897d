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
//     ROLLOUT_FORMAT.md): setup messages are skipped and rollback markers
//     remove the last counted messages.
//   - Appending writes whole lines only, cuts a torn tail before the first
//     append, and makes each acknowledged append durable according to a
//     SyncPolicy.
package rollout
