package rollout

// OpenTurn is TurnTracker's cut rule in the form an index keeps between
// appends (two columns of a thread's row): what a counted user message
// appended later needs to know of the turn open at the end of the
// history. Offset > 0 is the start of an open turn that has no counted
// user message yet, Offset < 0 an open turn that has one, 0 no open turn;
// ID is the open turn's id. The zero value is a history with no open turn.
//
// The local index (indexer.Tracker) and the distributed one (pgstore)
// both fold appends through it, so a fork cuts where TurnTracker, reading
// the whole history, would.
type OpenTurn struct {
	Offset int64
	ID     string
}

// Start notes a start line of turn id at offset (in the history): another
// start line of the open turn changes nothing, any other opens a turn.
func (o *OpenTurn) Start(offset int64, id string) {
	if id != "" && id == o.ID && o.Offset != 0 {
		return
	}
	o.Offset, o.ID = offset, id
}

// End notes the end of the open turn (its task_complete or turn_aborted)
// or a rollback, after which no turn is open.
func (o *OpenTurn) End() { o.Offset = 0 }

// UserMessage notes a counted user message and returns where a fork
// before it is cut and its turn: the open turn's start for the turn's
// first message, else 0 (before the message's own line), and the open
// turn's id, "" when none is open.
func (o *OpenTurn) UserMessage() (cut int64, turnID string) {
	switch {
	case o.Offset > 0:
		cut, turnID = o.Offset, o.ID
		o.Offset = -1
	case o.Offset < 0:
		turnID = o.ID
	}
	return cut, turnID
}
