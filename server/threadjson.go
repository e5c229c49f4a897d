package server

import (
	"encoding/json"
	"strconv"

	"github.com/spoolhq/spool/api"
)

// appendPage appends the JSON of a page of threads to b, byte for byte
// what json.Marshal writes for it (TestThreadJSONMatchesMarshal): a page
// of 50 threads is the hottest answer of the server, and reflection was a
// quarter of its handler.
func appendPage(b []byte, page api.Page) []byte {
	b = append(b, `{"threads":[`...)
	for i := range page.Threads {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendThread(b, &page.Threads[i])
	}
	b = append(b, ']')
	if page.NextCursor != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendString(b, page.NextCursor)
	}
	return append(b, '}')
}

// appendThread appends the JSON of t as json.Marshal writes it, following
// api.Thread's field tags.
func appendThread(b []byte, t *api.Thread) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, t.ID)
	b = append(b, `,"rollout_path":`...)
	b = appendString(b, t.RolloutPath)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, t.CreatedAt, 10)
	b = append(b, `,"updated_at":`...)
	b = strconv.AppendInt(b, t.UpdatedAt, 10)
	b = append(b, `,"cwd":`...)
	b = appendString(b, t.Cwd)
	b = append(b, `,"source":`...)
	b = appendString(b, t.Source)
	b = append(b, `,"originator":`...)
	b = appendString(b, t.Originator)
	b = append(b, `,"cli_version":`...)
	b = appendString(b, t.CLIVersion)
	b = append(b, `,"model_provider":`...)
	b = appendString(b, t.ModelProvider)
	if t.GitCommit != "" {
		b = append(b, `,"git_commit":`...)
		b = appendString(b, t.GitCommit)
	}
	if t.GitBranch != "" {
		b = append(b, `,"git_branch":`...)
		b = appendString(b, t.GitBranch)
	}
	if t.GitOrigin != "" {
		b = append(b, `,"git_origin":`...)
		b = appendString(b, t.GitOrigin)
	}
	b = append(b, `,"name":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"preview":`...)
	b = appendString(b, t.Preview)
	b = append(b, `,"archived":`...)
	b = strconv.AppendBool(b, t.Archived)
	if t.ArchivedAt != 0 {
		b = append(b, `,"archived_at":`...)
		b = strconv.AppendInt(b, t.ArchivedAt, 10)
	}
	if t.ParentID != "" {
		b = append(b, `,"parent_id":`...)
		b = appendString(b, t.ParentID)
	}
	b = append(b, `,"fork_user_message":`...)
	b = strconv.AppendInt(b, int64(t.ForkUserMessage), 10)
	b = append(b, `,"fork_offset":`...)
	b = strconv.AppendInt(b, t.ForkOffset, 10)
	b = append(b, `,"line_count":`...)
	b = strconv.AppendInt(b, t.LineCount, 10)
	b = append(b, `,"user_message_count":`...)
	b = strconv.AppendInt(b, int64(t.UserMessageCount), 10)
	b = append(b, `,"indexed_size":`...)
	b = strconv.AppendInt(b, t.IndexedSize, 10)
	b = append(b, `,"history_size":`...)
	b = strconv.AppendInt(b, t.HistorySize, 10)
	b = append(b, `,"history_mode":`...)
	b = appendString(b, t.HistoryMode)
	if t.BaseID != "" {
		b = append(b, `,"base_id":`...)
		b = appendString(b, t.BaseID)
	}
	if t.BaseSize != 0 {
		b = append(b, `,"base_size":`...)
		b = strconv.AppendInt(b, t.BaseSize, 10)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. Printable ASCII other than the
// quote, the backslash and the HTML characters json.Marshal escapes is
// copied as is; any other string goes through json.Marshal, so the
// escaping rules stay the standard library's.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always marshals
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
