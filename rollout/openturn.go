package rollout

// OpenTurn is TurnTracker's cut rule in the form an index keeps between
// appends (two columns of a thread's row): what a counted user message
// appended later needs to know of the turn open at the end of the
// history. Offset > 0 is the start of an open turn that has no counted
// user message yet, Offset < 0 an open turn that has one, 0 no open turn;
// ID is the open turn's id. The zero value is a history with no open turn.
//
// The state is canonical: no turn open is always the zero value, and an
// open turn without an id ends with its first counted user message, after
// which nothing tells it from no turn. So the state after a counted user
// message follows from that message's turn id alone (AfterUserMessage):
// a fork cut anywhere reads its open turn from its last message on.
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
func (o *OpenTurn) End() { *o = OpenTurn{} }

// UserMessage notes a counted user message and returns where a fork
// before it is cut and its turn: the open turn's start for the turn's
// first message, else 0 (before the message's own line), and the open
// turn's id, "" when none is open.
func (o *OpenTurn) UserMessage() (cut int64, turnID string) {
	switch {
	case o.Offset > 0:
		cut, turnID = o.Offset, o.ID
		*o = AfterUserMessage(turnID)
	case o.Offset < 0:
		turnID = o.ID
	}
	return cut, turnID
}

// AfterUserMessage returns the state after a counted user message of turn
// turnID ("" for none): that turn open with a message, or no turn open.
func AfterUserMessage(turnID string) OpenTurn {
	if turnID == "" {
		return OpenTurn{}
	}
	return OpenTurn{Offset: -1, ID: turnID}
}
