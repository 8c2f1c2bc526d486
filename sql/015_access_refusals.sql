-- People, not only keys (SPEC 10): the record of disclosures also keeps the
-- refused attempts (FERPA 34 CFR 99.32 records requests as well as
-- disclosures), each naming the rule that refused it. A refusal about
-- something other than one person (a lesson report, a live session) has no
-- subject; its resource says what was asked for.
ALTER TABLE access_log
    ALTER COLUMN subject_id DROP NOT NULL,
    ADD COLUMN outcome text NOT NULL DEFAULT 'disclosed',
    ADD COLUMN rule text,
    ADD CONSTRAINT access_log_outcome_check CHECK (outcome IN ('disclosed', 'refused'));

COMMENT ON TABLE access_log IS
    'Record of disclosures: every read of one person''s data and every refused attempt '
    '(who, what, when, which rule), no data.';
