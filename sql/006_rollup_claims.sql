-- One row per roll-up claim committed into activity_rollups. The roll-up
-- inserts the claim id in the same transaction as the counts; a claim id
-- already here means "already counted", which is what makes a roll-up that
-- crashed after committing (or a second instance) harmless. Rows older than
-- the longest a claim can stay in Redis may be deleted (the retention timer).

CREATE TABLE rollup_claims (
    claim text PRIMARY KEY,
    committed_at timestamptz NOT NULL DEFAULT now()
);
