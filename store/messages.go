package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// UserMessages returns the counted user messages of a thread in order
// (ErrNotFound for an unknown thread).
func (s *Store) UserMessages(ctx context.Context, id string) ([]UserMessage, error) {
	msgs := []UserMessage{}
	const q = `SELECT thread_id, ordinal, byte_offset, line_number, preview, cut_offset, turn_id
		FROM user_messages WHERE thread_id = ? ORDER BY ordinal`
	if err := s.reader.SelectContext(ctx, &msgs, q, id); err != nil {
		return nil, fmt.Errorf("user messages of thread %s: %w", id, err)
	}
	if len(msgs) == 0 {
		if err := s.exists(ctx, id); err != nil {
			return nil, fmt.Errorf("user messages of thread %s: %w", id, err)
		}
	}
	return msgs, nil
}

// UserMessage returns message ordinal of thread id, or ErrNotFound.
func (s *Store) UserMessage(ctx context.Context, id string, ordinal int) (UserMessage, error) {
	var m UserMessage
	const q = `SELECT thread_id, ordinal, byte_offset, line_number, preview, cut_offset, turn_id
		FROM user_messages WHERE thread_id = ? AND ordinal = ?`
	err := s.reader.GetContext(ctx, &m, q, id, ordinal)
	if errors.Is(err, sql.ErrNoRows) {
		return UserMessage{}, fmt.Errorf("user message %d of thread %s: %w", ordinal, id, ErrNotFound)
	}
	if err != nil {
		return UserMessage{}, fmt.Errorf("user message %d of thread %s: %w", ordinal, id, err)
	}
	return m, nil
}

// exists returns nil when thread id is indexed and ErrNotFound otherwise.
func (s *Store) exists(ctx context.Context, id string) error {
	var found bool
	if err := s.reader.GetContext(ctx, &found, `SELECT EXISTS (SELECT 1 FROM threads WHERE id = ?)`, id); err != nil {
		return err
	}
	if !found {
		return ErrNotFound
	}
	return nil
}

// UserMessageOfTurn returns the first counted user message of thread id
// that Codex turn turnID holds, or ErrNotFound.
func (s *Store) UserMessageOfTurn(ctx context.Context, id, turnID string) (UserMessage, error) {
	var m UserMessage
	const q = `SELECT thread_id, ordinal, byte_offset, line_number, preview, cut_offset, turn_id
		FROM user_messages WHERE thread_id = ? AND turn_id = ? ORDER BY ordinal LIMIT 1`
	err := s.reader.GetContext(ctx, &m, q, id, turnID)
	if errors.Is(err, sql.ErrNoRows) {
		return UserMessage{}, fmt.Errorf("turn %q of thread %s: %w", turnID, id, ErrNotFound)
	}
	if err != nil {
		return UserMessage{}, fmt.Errorf("turn %q of thread %s: %w", turnID, id, err)
	}
	return m, nil
}

// UserMessagesBefore returns the counted user messages of thread id whose
// offset is below end, in order: what a history cut at end inherits.
func (s *Store) UserMessagesBefore(ctx context.Context, id string, end int64) ([]UserMessage, error) {
	msgs := []UserMessage{}
	const q = `SELECT thread_id, ordinal, byte_offset, line_number, preview, cut_offset, turn_id
		FROM user_messages WHERE thread_id = ? AND byte_offset < ? ORDER BY ordinal`
	if err := s.reader.SelectContext(ctx, &msgs, q, id, end); err != nil {
		return nil, fmt.Errorf("user messages of thread %s before %d: %w", id, end, err)
	}
	return msgs, nil
}
