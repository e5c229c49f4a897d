package rollout

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/rollout")

// testdataDir is where this package's hand-written fixtures live.
const testdataDir = "../testdata/rollout"

// fixtureFiles returns the .jsonl fixtures under testdata/rollout.
func fixtureFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures in %s", testdataDir)
	}
	return files
}

// describe renders what the Reader and Counter make of data, one line per
// yielded line, for golden files.
func describe(t testing.TB, data []byte) string {
	t.Helper()
	var b strings.Builder
	r := NewReader(bytes.NewReader(data), 0, 0)
	var c Counter
	for r.Next() {
		l := r.Line()
		cl := c.Observe(l)
		fmt.Fprintf(&b, "line %d offset %d type=%q payload=%q kind=%s", l.Number, l.Offset, l.Type, l.PayloadType, cl.Kind)
		switch cl.Kind {
		case KindUserMessage:
			fmt.Fprintf(&b, " text=%q", cl.Text)
		case KindRollback:
			fmt.Fprintf(&b, " turns=%d", cl.RollbackTurns)
		case KindNameUpdate:
			fmt.Fprintf(&b, " name=%q", cl.Name)
		}
		if l.Err != nil {
			fmt.Fprintf(&b, " err=%q", l.Err)
		}
		b.WriteByte('\n')
	}
	if err := r.Err(); err != nil {
		t.Fatalf("read: %v", err)
	}
	end, lines := r.End()
	tornOff, tornLen := r.Torn()
	fmt.Fprintf(&b, "end %d lines %d torn %d+%d\n", end, lines, tornOff, tornLen)
	for _, m := range c.Messages() {
		fmt.Fprintf(&b, "user message %d offset %d line %d text=%q\n", m.Ordinal, m.Offset, m.Line, m.Text)
	}
	return b.String()
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}
