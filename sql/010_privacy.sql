-- Privacy (SPEC section 9): erasure tombstones and the record of disclosures.

-- One row per erased user. Every write path drops events naming a user listed
-- here, so messages still on a queue when the erasure ran cannot bring the
-- data back. The persist path takes SHARE on this table before writing and an
-- erasure inserts here first (ROW EXCLUSIVE), so the two never interleave.
CREATE TABLE erased_users (
    user_id uuid PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now(),
    erased_by text NOT NULL
);

COMMENT ON TABLE erased_users IS
    'Erasure tombstones: events naming these users are dropped by every path.';

-- FERPA record of disclosures (34 CFR 99.32): who read one person''s data,
-- what and when; never the data itself.
CREATE TABLE access_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id uuid NOT NULL,
    accessor text NOT NULL,
    action text NOT NULL,
    resource text NOT NULL,
    accessed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_log_subject_idx ON access_log (subject_id, id);

COMMENT ON TABLE access_log IS
    'Record of disclosures: every read of one person''s data (who, what, when), no data.';
