-- One row per unique event_id: the single place where duplicates are detected.
--
-- The persist path inserts here first (ON CONFLICT (event_id) DO NOTHING
-- RETURNING event_id) and writes only the newly inserted events to the type
-- tables. A partitioned table's primary key must contain the partition key, so
-- the partitioned history tables cannot reject a redelivered event on their
-- own; this table can, because it is not partitioned and its key is event_id
-- alone. user_ids lists every user the event names (actor first), for "recent
-- activity involving a user" and for erasure.

CREATE TABLE event_ledger (
    event_id uuid PRIMARY KEY,
    type text NOT NULL CHECK (
        type IN (
            'lesson_progress',
            'quiz_attempt',
            'forum_activity',
            'content_activity',
            'feedback',
            'live_class_engagement'
        )
    ),
    actor_id uuid NOT NULL,
    user_ids uuid[] NOT NULL CHECK (cardinality(user_ids) >= 1),
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);

-- "Everything involving user X" (recent activity, export, erasure).
CREATE INDEX event_ledger_user_ids_idx ON event_ledger USING gin (user_ids);
-- Time windows and retention (batched DELETE ... WHERE occurred_at < cutoff).
CREATE INDEX event_ledger_occurred_at_idx ON event_ledger (occurred_at);

COMMENT ON TABLE event_ledger IS
    'One row per unique stored event; the dedupe point of the persist path.';
