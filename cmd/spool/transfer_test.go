package main

import (
	"strings"
	"testing"

	"github.com/spoolhq/spool/client"
)

// TestTransferBetweenRoots: spool transfer copies a fork with its parent
// from a root that spoold served to a new root, which then shows it; a
// second transfer finds both present.
func TestTransferBetweenRoots(t *testing.T) {
	s := startSpoold(t, "")
	ctx := t.Context()
	base, err := s.c.Create(ctx, client.CreateOptions{Cwd: "/work/project", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Append(ctx, base.ID, item("user", "prompt one"), item("assistant", "answer one"), item("user", "prompt two")); err != nil {
		t.Fatal(err)
	}
	one := 1
	fork, err := s.c.Fork(ctx, base.ID, client.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	// The transfer opens the root directly: its server goes first.
	s.close(t)
	target := t.TempDir()
	cli := newCLI(t, map[string]string{"SPOOL_ADDR": "127.0.0.1:1"})
	out := cli.ok("transfer", fork.ID, "--from", s.root, "--to", target)
	if !strings.Contains(out, "copied "+base.ID) || !strings.Contains(out, "copied "+fork.ID) || strings.Index(out, base.ID) > strings.Index(out, fork.ID) {
		t.Fatalf("transfer printed %q; want the parent copied, then the fork", out)
	}
	shown := cli.ok("--local", "--root", target, "show", fork.ID)
	if !strings.Contains(shown, "prompt one") || strings.Contains(shown, "prompt two") {
		t.Fatalf("the copied fork shows %q", shown)
	}
	if again := cli.ok("transfer", fork.ID, "--from", s.root, "--to", target); !strings.Contains(again, "present "+fork.ID) {
		t.Fatalf("second transfer printed %q", again)
	}
	if r := cli.run("transfer", fork.ID, "--from", s.root); r.code == 0 {
		t.Fatal("transfer without --to succeeded")
	}
}
