package rollout

import "testing"

func TestOpenTurn(t *testing.T) {
	type step struct {
		op     string // start, end, message
		offset int64  // of start
		id     string // of start
		cut    int64  // want, of message
		turnID string // want, of message
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"no turn", []step{{op: "message"}, {op: "message"}}},
		{"first message cuts at the turn", []step{
			{op: "start", offset: 100, id: "t1"},
			{op: "message", cut: 100, turnID: "t1"},
			{op: "message", turnID: "t1"},
		}},
		{"a second start line of the open turn", []step{
			{op: "start", offset: 100, id: "t1"},
			{op: "start", offset: 180, id: "t1"},
			{op: "message", cut: 100, turnID: "t1"},
			{op: "start", offset: 300, id: "t1"},
			{op: "message", turnID: "t1"},
		}},
		{"a start without id always opens", []step{
			{op: "start", offset: 100},
			{op: "start", offset: 180},
			{op: "message", cut: 180},
		}},
		{"the next turn", []step{
			{op: "start", offset: 100, id: "t1"},
			{op: "message", cut: 100, turnID: "t1"},
			{op: "start", offset: 400, id: "t2"},
			{op: "message", cut: 400, turnID: "t2"},
		}},
		{"an end forgets the turn", []step{
			{op: "start", offset: 100, id: "t1"},
			{op: "message", cut: 100, turnID: "t1"},
			{op: "end"},
		}},
		{"a turn without id ends with its first message", []step{
			{op: "start", offset: 100},
			{op: "message", cut: 100},
			{op: "message"},
		}},
		{"after an end", []step{
			{op: "start", offset: 100, id: "t1"},
			{op: "end"},
			{op: "message"},
			{op: "start", offset: 500, id: "t1"},
			{op: "message", cut: 500, turnID: "t1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o OpenTurn
			defer func() {
				if o != (OpenTurn{}) && (o.ID == "" || o.Offset == 0) {
					t.Errorf("ends as %+v: no turn open is the zero value, an open turn has an id or no message", o)
				}
			}()
			for i, s := range tt.steps {
				switch s.op {
				case "start":
					o.Start(s.offset, s.id)
				case "end":
					o.End()
				case "message":
					if cut, id := o.UserMessage(); cut != s.cut || id != s.turnID {
						t.Fatalf("step %d: message cut at %d in turn %q, want %d in %q", i, cut, id, s.cut, s.turnID)
					}
					if after := AfterUserMessage(s.turnID); o != after {
						t.Fatalf("step %d: after the message %+v, want %+v (AfterUserMessage)", i, o, after)
					}
				}
			}
		})
	}
}
