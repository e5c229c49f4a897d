package store

import (
	"database/sql/driver"
	"strings"
	"unicode/utf8"

	"modernc.org/sqlite"
)

// foldFunc is the SQL function that lowers text by Unicode's rules, where
// SQLite's LIKE and lower() fold ASCII letters only: a listing's text
// filter ("case-insensitive substring") matches "Ünïcode" with "ünï", as
// PostgreSQL's ILIKE does for the distributed backend.
const foldFunc = "spool_fold"

func init() {
	sqlite.MustRegisterDeterministicScalarFunction(foldFunc, 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return strings.ToLower(string(v)), nil
		}
		return args[0], nil // NULL, or a number, as it is
	})
}

// maxLikePattern is the longest pattern SQLite's LIKE takes
// (SQLITE_MAX_LIKE_PATTERN_LENGTH); a longer one fails the query.
const maxLikePattern = 50000

// textFilter returns the condition and arguments of a listing's text
// filter over the name and the preview: LIKE for ASCII text (fast, and
// exact there) whose pattern LIKE takes, the Unicode fold otherwise.
func textFilter(text string) (string, []any) {
	if isASCII(text) {
		pattern := "%" + likeEscaper.Replace(text) + "%"
		if len(pattern) <= maxLikePattern {
			return `(name LIKE ? ESCAPE '\' OR preview LIKE ? ESCAPE '\')`, []any{pattern, pattern}
		}
	}
	folded := strings.ToLower(text)
	return `(instr(` + foldFunc + `(name), ?) > 0 OR instr(` + foldFunc + `(preview), ?) > 0)`, []any{folded, folded}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
