-- One version of each event (SPEC 13): the first stored version wins in every
-- store. The ledger keeps a fingerprint of each event's content (a SHA-256
-- prefix of its canonical JSON, without the id); a later event with the same
-- event_id and another fingerprint is a conflict, kept out and recorded here.
-- Events stored before this migration have no fingerprint: a second version of
-- one of them is kept out as before, without a record.
ALTER TABLE event_ledger ADD COLUMN content_digest text;

CREATE TABLE event_conflicts (
    event_id uuid NOT NULL,
    sink text NOT NULL CHECK (sink IN ('postgres', 'archive', 'realtime')),
    first_digest text NOT NULL,
    other_digest text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, sink, other_digest)
);

COMMENT ON TABLE event_conflicts IS
    'Second versions of an event_id that a sink met and kept out (the first version won).';
