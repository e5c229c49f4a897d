// Package compat drives the real Codex CLI as a peer and an oracle: it runs
// `codex app-server` inside a private network namespace (`unshare -n`) with
// a temporary CODEX_HOME and a dummy API key, and speaks its stdio
// JSON-RPC. The compatibility tests that use it are behind the build tag
// "compat" (make compat); see docs/CODEX.md for what they established.
//
// The driver itself lives in internal/codexrpc, which the benchmarks
// against Codex share; the names below are that package's.
package compat

import "github.com/spoolhq/spool/internal/codexrpc"

// ErrClosed reports a call on a server that has exited or been closed.
var ErrClosed = codexrpc.ErrClosed

type (
	// RPCError is an error answer of the app-server.
	RPCError = codexrpc.RPCError
	// Options configure Start.
	Options = codexrpc.Options
	// Notification is a message of the server without an id.
	Notification = codexrpc.Notification
	// Server is a running `codex app-server`.
	Server = codexrpc.Server
)

// Start runs `unshare -n <Binary> app-server` and performs the handshake;
// see codexrpc.Start.
var Start = codexrpc.Start
