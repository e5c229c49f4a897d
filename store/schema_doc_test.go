package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docExample is a ```sql block of docs/SCHEMA.md and the ```text block of
// its expected output that follows it.
type docExample struct {
	line   int
	query  string
	output []string
}

// readDocExamples extracts the SQL examples of the schema document.
func readDocExamples(t *testing.T, path string) []docExample {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var examples []docExample
	var block []string
	var lang string
	start, n := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case lang == "" && strings.HasPrefix(line, "```") && len(line) > 3:
			lang, block, start = strings.TrimPrefix(line, "```"), nil, n
		case lang != "" && line == "```":
			switch lang {
			case "sql":
				examples = append(examples, docExample{line: start, query: strings.Join(block, "\n")})
			case "text":
				if len(examples) == 0 || examples[len(examples)-1].output != nil {
					t.Fatalf("%s:%d: output block without a query before it", path, start)
				}
				examples[len(examples)-1].output = append([]string{}, block...)
			}
			lang = ""
		case lang != "":
			block = append(block, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return examples
}

// TestSchemaDocExamples runs every SQL example of docs/SCHEMA.md verbatim
// against an index holding the document's fork and spawn trees and compares the rows
// with the output the document shows.
func TestSchemaDocExamples(t *testing.T) {
	doc := filepath.Join("..", "docs", "SCHEMA.md")
	examples := readDocExamples(t, doc)
	if len(examples) < 8 {
		t.Fatalf("found %d SQL examples in %s, want at least 8", len(examples), doc)
	}
	s := openTest(t)
	forkTree(t, s)
	spawnTree(t, s)
	chainTree(t, s)
	ctx := context.Background()
	for _, ex := range examples {
		t.Run(fmt.Sprintf("line %d", ex.line), func(t *testing.T) {
			if ex.output == nil {
				t.Fatalf("%s:%d: no ```text block with the expected output", doc, ex.line)
			}
			got, err := queryListMode(ctx, s, ex.query)
			if err != nil {
				t.Fatalf("%s:%d: %v\n%s", doc, ex.line, err, ex.query)
			}
			if strings.Join(got, "\n") != strings.Join(ex.output, "\n") {
				t.Fatalf("%s:%d: query returned\n%s\nthe document shows\n%s",
					doc, ex.line, strings.Join(got, "\n"), strings.Join(ex.output, "\n"))
			}
		})
	}
}

// queryListMode runs query on the read-only pool and renders each row as
// the sqlite3 shell does in list mode.
func queryListMode(ctx context.Context, s *Store, query string) ([]string, error) {
	rows, err := s.reader.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		fields := make([]string, len(cols))
		for i, v := range values {
			switch v := v.(type) {
			case nil:
				fields[i] = ""
			case []byte:
				fields[i] = string(v)
			default:
				fields[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(fields, "|"))
	}
	return out, rows.Err()
}

// chainTree inserts the history chain of the schema document, in /paged:
// paginated thread "p" with three user messages, and "p1", a reference
// fork of p before its third message that added one of its own.
func chainTree(t *testing.T, s *Store) {
	t.Helper()
	p := newThread("p", 2000)
	p.Cwd, p.HistoryMode, p.Preview, p.UserMessageCount, p.IndexedSize = "/paged", "paginated", "thread p", 3, 4000
	mustInsert(t, s, Record{Thread: p, Messages: messages(0, 3, "about p")})
	p1 := newThread("p1", 2001)
	p1.Cwd, p1.HistoryMode, p1.Preview, p1.UserMessageCount = "/paged", "paginated", "thread p", 3
	p1.ParentID, p1.BaseID, p1.BaseSize, p1.ForkUserMessage, p1.ForkOffset = "p", "p", 3000, 2, 3000
	own := messages(2, 1, "about p1")
	own[0].Offset, own[0].Line = 3500, 1
	if err := s.InsertFork(t.Context(), Record{Thread: p1, Messages: own}, ForkSource{ParentID: "p", Messages: 2}); err != nil {
		t.Fatal(err)
	}
}
