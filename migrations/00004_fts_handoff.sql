-- A fork's inherited user-message rows carry no text (00002): the search
-- index holds each prompt once, in the thread that was asked it. When that
-- thread is deleted, its rows go, and with them the only indexed copy of
-- the text: the forks that still hold the prompt would never be found by
-- it. So, before a thread is deleted, the text of each of its own messages
-- is handed to the same message (same ordinal, no text) in its oldest
-- surviving descendant that inherited it, in the same transaction. The
-- text is tokenised once, at hand-off, not per fork. Only deleting the
-- thread hands text over: re-indexing a thread (which replaces its rows)
-- and rollbacks (which drop the rows of the thread's later messages) do not.

-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER threads_fts_handoff BEFORE DELETE ON threads BEGIN
    UPDATE user_messages
    SET text = (SELECT o.text FROM user_messages o
                WHERE o.thread_id = old.id AND o.ordinal = user_messages.ordinal)
    WHERE id IN (
        SELECT (SELECT heir.id
                FROM thread_lineage l
                JOIN threads t ON t.id = l.thread_id
                JOIN user_messages heir ON heir.thread_id = l.thread_id AND heir.ordinal = o.ordinal
                WHERE l.ancestor_id = old.id AND heir.text = ''
                ORDER BY t.created_at, t.id
                LIMIT 1)
        FROM user_messages o
        WHERE o.thread_id = old.id AND o.text <> ''
    );
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER threads_fts_handoff;
