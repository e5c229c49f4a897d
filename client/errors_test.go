package client_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// codeConsts returns the Code* string constants declared in the Go file
// at path, by name.
func codeConsts(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !strings.HasPrefix(name.Name, "Code") || !ok || lit.Kind != token.STRING {
					continue
				}
				codes[name.Name], err = strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(codes) == 0 {
		t.Fatalf("no Code constants in %s", path)
	}
	return codes
}

// sentinels are the client's exported sentinel errors.
var sentinels = []error{
	client.ErrNotFound, client.ErrInvalidID, client.ErrInvalidJSON, client.ErrInvalidItem,
	client.ErrInvalidArgument, client.ErrOutOfRange, client.ErrArchived, client.ErrNotArchived,
	client.ErrConflict, client.ErrReferenced, client.ErrCompressed, client.ErrTooLarge,
	client.ErrUnsupportedMediaType, client.ErrUnauthorized, client.ErrMethodNotAllowed,
	client.ErrUnavailable, client.ErrNotSupported, client.ErrInternal, client.ErrForbidden,
	client.ErrTimeout, client.ErrTurnInProgress, client.ErrBusy, client.ErrTornTail,
	client.ErrInsufficientStorage, client.ErrInvalidQuery, client.ErrSizeMismatch,
	client.ErrIdempotencyKeyReused, client.ErrBrokenChain, client.ErrIndexDrift,
}

// TestEveryServerCodeHasASentinel reads the error codes the server sends
// (the Code constants of server/errors.go) and checks that the client
// declares each under the same name and that an *Error of each matches
// exactly one sentinel.
func TestEveryServerCodeHasASentinel(t *testing.T) {
	serverCodes := codeConsts(t, filepath.Join("..", "server", "errors.go"))
	clientCodes := codeConsts(t, "errors.go")
	for name, code := range serverCodes {
		t.Run(code, func(t *testing.T) {
			if got, ok := clientCodes[name]; !ok || got != code {
				t.Errorf("client.%s = %q (declared: %v), want %q", name, got, ok, code)
			}
			var matched []error
			for _, s := range sentinels {
				if errors.Is(&client.Error{Code: code}, s) {
					matched = append(matched, s)
				}
			}
			if len(matched) != 1 {
				t.Errorf("an *Error with code %q matches %v, want one sentinel", code, matched)
			}
		})
	}
}

// basicBackend offers a manager's Backend methods and none of the
// optional capabilities (purge, spawns, search, ...), as a backend that
// lacks them does.
type basicBackend struct{ manager.Backend }

// TestConflictAndCapabilityCodes provokes, against a real server, the
// codes of a refused delete (referenced), of an append to a compressed
// rollout (compressed) and of a route the backend does not offer
// (not_supported), and checks each matches its sentinel.
func TestConflictAndCapabilityCodes(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	c, stop := serveRoot(t, root, server.Config{}, nil)
	base, err := c.Create(ctx, client.CreateOptions{}) // paginated: forks reference it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(ctx, base.ID, userItem("one"), userItem("two")); err != nil {
		t.Fatal(err)
	}
	one := 1
	if _, err := c.Fork(ctx, base.ID, client.ForkOptions{BeforeUserMessage: &one}); err != nil {
		t.Fatal(err)
	}
	cold, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(ctx, cold.ID, userItem("old")); err != nil {
		t.Fatal(err)
	}
	if cold, err = c.Get(ctx, cold.ID); err != nil {
		t.Fatal(err)
	}
	stop()
	fixtures.CompressRollout(t, root, cold.RolloutPath)
	c, _ = serveRoot(t, root, server.Config{}, nil)
	basic, _ := serveRoot(t, t.TempDir(), server.Config{}, func(m *manager.Manager) manager.Backend { return basicBackend{m} })

	tests := []struct {
		name   string
		call   func() error
		want   error
		status int
		code   string
	}{
		{"delete a base of reference forks", func() error { return c.Delete(ctx, base.ID) }, client.ErrReferenced, 409, client.CodeReferenced},
		{"append to a compressed rollout", func() error { _, err := c.Append(ctx, cold.ID, userItem("new")); return err }, client.ErrCompressed, 409, client.CodeCompressed},
		{"purge on a backend without it", func() error { return basic.Purge(ctx, base.ID) }, client.ErrNotSupported, 501, client.CodeNotSupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var apiErr *client.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &apiErr) {
				t.Fatalf("error = %v, want an *Error matching %v", err, tc.want)
			}
			if apiErr.Status != tc.status || apiErr.Code != tc.code {
				t.Fatalf("error = %d %q, want %d %q", apiErr.Status, apiErr.Code, tc.status, tc.code)
			}
		})
	}
}

// TestUnreachableServerNamesTheRequestOnce: a request that never reaches
// a server fails with an error that names its method and path once.
func TestUnreachableServerNamesTheRequestOnce(t *testing.T) {
	c, err := client.New(fixtures.ClosedAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	const id = "019dab90-0000-7000-8000-00000000a001"
	_, err = c.Get(t.Context(), id)
	if err == nil {
		t.Fatal("Get from a closed port succeeded")
	}
	if n := strings.Count(err.Error(), "/v1/threads/"+id); n != 1 {
		t.Fatalf("%q names the path %d times, want once", err, n)
	}
}
