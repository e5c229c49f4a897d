package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/rollout"
)

// renderOptions choose what show and tail print.
type renderOptions struct {
	raw bool // the stored lines, verbatim
	all bool // setup messages, reasoning and other lines too
}

// renderer writes rollout lines for reading. It numbers user messages by
// the thread's turns (which count as forks do, rollbacks applied), so it
// needs each line's position in the thread's history.
type renderer struct {
	w     io.Writer
	opts  renderOptions
	id    string        // the thread shown: lines of its parent's (a fork's history) name theirs
	turns map[int64]int // history position of a counted user message -> ordinal
	metas int           // session_meta lines seen
}

func newRenderer(w io.Writer, opts renderOptions, id string, turns []client.Turn) *renderer {
	if !opts.raw {
		w = printable{w}
	}
	return &renderer{w: w, opts: opts, id: id, turns: turnOffsets(turns)}
}

func turnOffsets(turns []client.Turn) map[int64]int {
	m := make(map[int64]int, len(turns))
	for _, t := range turns {
		m[t.Offset] = t.Ordinal
	}
	return m
}

func (r *renderer) header(t client.Thread) {
	fmt.Fprintf(r.w, "thread %s  %s\n", t.ID, label(t))
	var facts []string
	if t.Cwd != "" {
		facts = append(facts, t.Cwd)
	}
	if t.Source != "" {
		facts = append(facts, t.Source)
	}
	facts = append(facts, "started "+when(t.CreatedAt), "updated "+when(t.UpdatedAt), count(t.UserMessageCount, "user message"))
	if t.Archived {
		facts = append(facts, "archived")
	}
	fmt.Fprintln(r.w, strings.Join(facts, " · "))
	if t.ParentID != "" {
		switch {
		case t.ForkUserMessage >= 0:
			fmt.Fprintf(r.w, "forked from %s before user message %d\n", t.ParentID, t.ForkUserMessage)
		case t.ForkOffset < 0: // a fork Codex wrote: where it was cut is not recorded
			fmt.Fprintf(r.w, "forked from %s (where is not recorded)\n", t.ParentID)
		case t.BaseID != "":
			fmt.Fprintf(r.w, "forked from %s (the whole thread, by reference)\n", t.ParentID)
		default:
			fmt.Fprintf(r.w, "forked from %s (the whole thread, copied)\n", t.ParentID)
		}
	}
}

// payload is the part of a payload the renderer reads.
type payload struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Input     string          `json:"input"`
	Output    json.RawMessage `json:"output"`
	Summary   []struct {
		Text string `json:"text"`
	} `json:"summary"`
	ThreadID   string `json:"thread_id"`
	ThreadName string `json:"thread_name"`
	NumTurns   int    `json:"num_turns"`
	Message    string `json:"message"`
}

// text joins the text parts of a message's content.
func text(content json.RawMessage) string {
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(content, &parts) != nil {
		var s string
		if json.Unmarshal(content, &s) == nil {
			return s
		}
		return ""
	}
	var out []string
	for _, p := range parts {
		switch {
		case p.Text != "":
			out = append(out, p.Text)
		case p.Type == "input_image":
			out = append(out, "[image]")
		}
	}
	return strings.Join(out, "\n")
}

// clip keeps the first n lines of s.
func clip(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n… %d more lines", len(lines)-n)
}

// line renders l, whose position in the history is start+l.Offset.
func (r *renderer) line(l client.Line, start int64) error {
	if r.opts.raw {
		_, err := fmt.Fprintf(r.w, "%s\n", l.Raw)
		return err
	}
	var p payload
	_ = json.Unmarshal(l.Payload, &p) // a line that is not an envelope renders as "other"
	stamp := ""
	if ts, err := time.Parse(time.RFC3339Nano, l.Timestamp); err == nil {
		stamp = " · " + ts.Local().Format("2006-01-02 15:04:05")
	}
	section := func(title, body string) error {
		_, err := fmt.Fprintf(r.w, "\n── %s%s ──\n%s\n", title, stamp, body)
		return err
	}
	note := func(format string, args ...any) error {
		_, err := fmt.Fprintf(r.w, "· "+format+"\n", args...)
		return err
	}
	switch {
	case l.Type == "session_meta":
		r.metas++
		if r.opts.all {
			return note("session_meta (%d)", r.metas)
		}
	case l.Type == "response_item" && p.Type == "message":
		body := text(p.Content)
		switch p.Role {
		case "user":
			if k, ok := r.turns[start+l.Offset]; ok {
				return section(fmt.Sprintf("user #%d", k), body)
			}
			kind := rollout.Classify(rollout.NewLine(l.Raw, start+l.Offset, 0)).Kind
			if kind == rollout.KindUserMessage {
				return section("user (rolled back)", body)
			}
			if r.opts.all {
				return section("user (setup)", clip(body, 8))
			}
		case "assistant":
			return section("assistant", body)
		default:
			if r.opts.all {
				return section(p.Role, clip(body, 8))
			}
		}
	case l.Type == "response_item" && (p.Type == "function_call" || p.Type == "custom_tool_call" || p.Type == "local_shell_call"):
		args := p.Arguments
		if args == "" {
			args = p.Input
		}
		return note("call %s %s", p.Name, oneLine(args, 160))
	case l.Type == "response_item" && (p.Type == "function_call_output" || p.Type == "custom_tool_call_output"):
		var out string
		if json.Unmarshal(p.Output, &out) != nil {
			var obj struct {
				Output string `json:"output"`
			}
			if json.Unmarshal(p.Output, &obj) == nil {
				out = obj.Output
			}
		}
		_, err := fmt.Fprintf(r.w, "%s\n", indent(clip(out, 12), "  │ "))
		return err
	case l.Type == "response_item" && p.Type == "reasoning":
		if r.opts.all && len(p.Summary) > 0 {
			var parts []string
			for _, s := range p.Summary {
				parts = append(parts, s.Text)
			}
			return section("reasoning", strings.Join(parts, "\n"))
		}
	case l.Type == "event_msg" && p.Type == "thread_name_updated":
		if p.ThreadID != "" && p.ThreadID != r.id { // a fork's history holds its parent's renames
			return note("%s renamed to %q", p.ThreadID, p.ThreadName)
		}
		return note("renamed to %q", p.ThreadName)
	case l.Type == "event_msg" && p.Type == "thread_rolled_back":
		if rollout.Classify(rollout.NewLine(l.Raw, start+l.Offset, 0)).Kind != rollout.KindRollback {
			// In a paginated history: Codex ignores it, and so do the counts.
			return note("a rollback of %s, ignored (a paginated thread is not rolled back)", count(p.NumTurns, "turn"))
		}
		return note("rolled back %s", count(p.NumTurns, "turn"))
	case l.Type == "compacted":
		return note("context compacted")
	default:
		if r.opts.all {
			kind := l.Type
			if p.Type != "" {
				kind += "/" + p.Type
			}
			if kind == "" {
				kind = "unreadable line"
			}
			return note("%s", kind)
		}
	}
	return nil
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// drawTree draws a fork tree with box-drawing characters, children in the
// order they were forked, marking the thread `mark`.
func drawTree(w io.Writer, tree client.Tree, mark string) error {
	w = printable{w}
	type node struct {
		id       string
		thread   *client.Thread
		children []*node
	}
	nodes := map[string]*node{tree.Root.ID: {id: tree.Root.ID}}
	if tree.Root.RolloutPath != "" {
		nodes[tree.Root.ID].thread = &tree.Root
	}
	members := slices.Clone(tree.Members)
	// Parents first, then by creation: a stable, readable order.
	slices.SortStableFunc(members, func(x, y client.Relative) int {
		if x.Depth != y.Depth {
			return x.Depth - y.Depth
		}
		if x.Thread != nil && y.Thread != nil {
			return x.Thread.CreatedAt.Compare(y.Thread.CreatedAt)
		}
		return strings.Compare(x.ID, y.ID)
	})
	for _, m := range members {
		nodes[m.ID] = &node{id: m.ID, thread: m.Thread}
	}
	root := nodes[tree.Root.ID]
	for _, m := range members {
		parent := root
		if m.Thread != nil && m.Thread.ParentID != "" {
			p, ok := nodes[m.Thread.ParentID]
			if !ok {
				// The parent was deleted and left the tree: show it, as
				// deleted, where its own parent would be. That parent is
				// unknown, so it hangs from the root.
				p = &node{id: m.Thread.ParentID}
				nodes[p.id] = p
				root.children = append(root.children, p)
			}
			parent = p
		}
		parent.children = append(parent.children, nodes[m.ID])
	}
	describe := func(n *node) string {
		s := n.id
		if n.thread == nil {
			s += "  (deleted)"
		} else {
			t := n.thread
			s += "  " + label(*t)
			switch {
			case t.ParentID == "":
				s += fmt.Sprintf("  [%s]", count(t.UserMessageCount, "msg"))
			case t.ForkUserMessage >= 0:
				s += fmt.Sprintf("  [before #%d, %s]", t.ForkUserMessage, count(t.UserMessageCount, "msg"))
			case t.ForkOffset < 0: // a fork Codex wrote: where it was cut is not recorded
				s += fmt.Sprintf("  [fork, %s]", count(t.UserMessageCount, "msg"))
			case t.BaseID != "": // the whole thread, pointing into its history
				s += fmt.Sprintf("  [reference, %s]", count(t.UserMessageCount, "msg"))
			default: // the whole thread, its file copied
				s += fmt.Sprintf("  [copy, %s]", count(t.UserMessageCount, "msg"))
			}
			if t.Archived {
				s += "  (archived)"
			}
		}
		if n.id == mark {
			s += "  ◀"
		}
		return s
	}
	var walk func(n *node, prefix string) error
	walk = func(n *node, prefix string) error {
		for i, c := range n.children {
			branch, next := "├── ", "│   "
			if i == len(n.children)-1 {
				branch, next = "└── ", "    "
			}
			if _, err := fmt.Fprintf(w, "%s%s%s\n", prefix, branch, describe(c)); err != nil {
				return err
			}
			if err := walk(c, prefix+next); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := fmt.Fprintln(w, describe(root)); err != nil {
		return err
	}
	return walk(root, "")
}

// count says n of a thing, in the singular for one: "1 turn", "2 turns".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
