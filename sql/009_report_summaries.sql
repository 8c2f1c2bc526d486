-- Summaries the reports read instead of scanning (docs/reports.md), kept by
-- triggers so no writer's SQL changes.
--
-- Quiz report, answer_distribution: counts kept per (quiz, question, answer)
-- so the report reads a few dozen rows instead of expanding every attempt's
-- answers (a popular quiz has 10^5 attempts x 10 answers: seconds per report).
--
-- Maintained by statement-level triggers on quiz_attempts, so the persist
-- path's SQL is unchanged: one insert statement per message adds its
-- attempts' answers in one sorted upsert (sorted keys: concurrent messages
-- lock rows in the same order); deletes (erasure, retention) subtract; a
-- TRUNCATE empties it. The answer is keyed by md5 of its jsonb text (jsonb
-- text is canonical: key order and whitespace normalised), because an answer
-- may be far larger than a btree key may be.

CREATE TABLE quiz_answer_counts (
    quiz_id uuid NOT NULL,
    question_id text NOT NULL,
    answer_md5 uuid NOT NULL,
    answer jsonb NOT NULL,
    attempts bigint NOT NULL,
    PRIMARY KEY (quiz_id, question_id, answer_md5)
);

-- Quiz report, the other figures, for the same reason: per (quiz, score) the
-- attempts, passes and total duration (the exact median comes from the
-- cumulative counts), and per (quiz, student) the attempts and the first
-- passing attempt_number. Same triggers, same sorted upserts.
CREATE TABLE quiz_score_counts (
    quiz_id uuid NOT NULL,
    score double precision NOT NULL,
    attempts bigint NOT NULL,
    passed bigint NOT NULL,
    duration_sum bigint NOT NULL,
    PRIMARY KEY (quiz_id, score)
);

CREATE TABLE quiz_student_summary (
    quiz_id uuid NOT NULL,
    student_id uuid NOT NULL,
    attempts bigint NOT NULL,
    first_pass integer,
    PRIMARY KEY (quiz_id, student_id)
);

CREATE FUNCTION quiz_answer_counts_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quiz_answer_counts AS c (quiz_id, question_id, answer_md5, answer, attempts)
    SELECT n.quiz_id, a.key, md5(a.value::text)::uuid, (array_agg(a.value))[1], count(*)
    FROM added AS n, jsonb_each(n.answers) AS a
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (quiz_id, question_id, answer_md5)
        DO UPDATE SET attempts = c.attempts + excluded.attempts;
    INSERT INTO quiz_score_counts AS c (quiz_id, score, attempts, passed, duration_sum)
    SELECT quiz_id, score, count(*), count(*) FILTER (WHERE is_passed), sum(duration_seconds)
    FROM added
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (quiz_id, score) DO UPDATE SET
        attempts = c.attempts + excluded.attempts,
        passed = c.passed + excluded.passed,
        duration_sum = c.duration_sum + excluded.duration_sum;
    INSERT INTO quiz_student_summary AS c (quiz_id, student_id, attempts, first_pass)
    SELECT quiz_id, student_id, count(*), min(attempt_number) FILTER (WHERE is_passed)
    FROM added
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (quiz_id, student_id) DO UPDATE SET
        attempts = c.attempts + excluded.attempts,
        first_pass = LEAST(c.first_pass, excluded.first_pass);
    RETURN NULL;
END
$$;

CREATE FUNCTION quiz_answer_counts_subtract() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        SELECT o.quiz_id, a.key AS question_id, md5(a.value::text)::uuid AS answer_md5,
               count(*) AS attempts
        FROM removed AS o, jsonb_each(o.answers) AS a
        GROUP BY 1, 2, 3
    )
    UPDATE quiz_answer_counts AS c SET attempts = c.attempts - gone.attempts
    FROM gone
    WHERE (c.quiz_id, c.question_id, c.answer_md5)
        = (gone.quiz_id, gone.question_id, gone.answer_md5);
    DELETE FROM quiz_answer_counts
    WHERE attempts <= 0 AND quiz_id IN (SELECT DISTINCT quiz_id FROM removed);
    WITH gone AS (
        SELECT quiz_id, score, count(*) AS attempts, count(*) FILTER (WHERE is_passed) AS passed,
               sum(duration_seconds) AS duration_sum
        FROM removed GROUP BY 1, 2
    )
    UPDATE quiz_score_counts AS c SET
        attempts = c.attempts - gone.attempts,
        passed = c.passed - gone.passed,
        duration_sum = c.duration_sum - gone.duration_sum
    FROM gone
    WHERE (c.quiz_id, c.score) = (gone.quiz_id, gone.score);
    DELETE FROM quiz_score_counts
    WHERE attempts <= 0 AND quiz_id IN (SELECT DISTINCT quiz_id FROM removed);
    -- The first pass is re-read from the attempts that remain (an AFTER
    -- trigger sees the table without the deleted rows).
    WITH gone AS (SELECT quiz_id, student_id, count(*) AS attempts FROM removed GROUP BY 1, 2)
    UPDATE quiz_student_summary AS c SET
        attempts = c.attempts - gone.attempts,
        first_pass = (
            SELECT min(q.attempt_number) FROM quiz_attempts AS q
            WHERE q.quiz_id = c.quiz_id AND q.student_id = c.student_id AND q.is_passed
        )
    FROM gone
    WHERE (c.quiz_id, c.student_id) = (gone.quiz_id, gone.student_id);
    DELETE FROM quiz_student_summary
    WHERE attempts <= 0 AND quiz_id IN (SELECT DISTINCT quiz_id FROM removed);
    RETURN NULL;
END
$$;

CREATE FUNCTION quiz_answer_counts_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE quiz_answer_counts, quiz_score_counts, quiz_student_summary;
    RETURN NULL;
END
$$;

CREATE TRIGGER quiz_answer_counts_insert AFTER INSERT ON quiz_attempts
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION quiz_answer_counts_add();
CREATE TRIGGER quiz_answer_counts_delete AFTER DELETE ON quiz_attempts
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION quiz_answer_counts_subtract();
CREATE TRIGGER quiz_answer_counts_truncate AFTER TRUNCATE ON quiz_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION quiz_answer_counts_clear();

-- Attempts stored before this migration.
INSERT INTO quiz_answer_counts (quiz_id, question_id, answer_md5, answer, attempts)
SELECT q.quiz_id, a.key, md5(a.value::text)::uuid, (array_agg(a.value))[1], count(*)
FROM quiz_attempts AS q, jsonb_each(q.answers) AS a
GROUP BY 1, 2, 3;

INSERT INTO quiz_score_counts (quiz_id, score, attempts, passed, duration_sum)
SELECT quiz_id, score, count(*), count(*) FILTER (WHERE is_passed), sum(duration_seconds)
FROM quiz_attempts
GROUP BY 1, 2;
INSERT INTO quiz_student_summary (quiz_id, student_id, attempts, first_pass)
SELECT quiz_id, student_id, count(*), min(attempt_number) FILTER (WHERE is_passed)
FROM quiz_attempts
GROUP BY 1, 2;

-- Activity report by hour and by day: unique events per type per UTC hour and
-- day, kept from the roll-up's writes to activity_rollups (metric `events`)
-- by a row trigger, so a 120-day report reads 720 rows instead of 170,000
-- minute buckets. The roll-up adds to a bucket with INSERT ... ON CONFLICT DO
-- UPDATE; the trigger adds the difference each write makes. Minute reports
-- read activity_rollups itself.
CREATE TABLE activity_event_totals (
    unit text NOT NULL CHECK (unit IN ('hour', 'day')),
    bucket_start timestamptz NOT NULL,
    dimension text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (unit, bucket_start, dimension)
);

CREATE FUNCTION activity_event_totals_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    delta bigint;
    moment timestamptz;
    name text;
    metric_name text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        delta := -OLD.value;
        moment := OLD.bucket_start;
        name := OLD.dimension;
        metric_name := OLD.metric;
    ELSIF TG_OP = 'UPDATE' THEN
        delta := NEW.value - OLD.value;
        moment := NEW.bucket_start;
        name := NEW.dimension;
        metric_name := NEW.metric;
    ELSE
        delta := NEW.value;
        moment := NEW.bucket_start;
        name := NEW.dimension;
        metric_name := NEW.metric;
    END IF;
    IF metric_name = 'events' AND delta <> 0 THEN
        -- Hour before day: every writer takes the two rows in the same order.
        INSERT INTO activity_event_totals AS t (unit, bucket_start, dimension, value)
        VALUES ('hour', date_trunc('hour', moment, 'UTC'), name, delta),
               ('day', date_trunc('day', moment, 'UTC'), name, delta)
        ON CONFLICT (unit, bucket_start, dimension)
            DO UPDATE SET value = t.value + excluded.value;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER activity_event_totals_write
    AFTER INSERT OR UPDATE OR DELETE ON activity_rollups
    FOR EACH ROW EXECUTE FUNCTION activity_event_totals_apply();

CREATE FUNCTION activity_event_totals_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE activity_event_totals;
    RETURN NULL;
END
$$;

CREATE TRIGGER activity_event_totals_truncate AFTER TRUNCATE ON activity_rollups
    FOR EACH STATEMENT EXECUTE FUNCTION activity_event_totals_clear();

-- Roll-ups stored before this migration.
INSERT INTO activity_event_totals (unit, bucket_start, dimension, value)
SELECT unit, date_trunc(unit, bucket_start, 'UTC'), dimension, sum(value)
FROM activity_rollups CROSS JOIN (VALUES ('hour'), ('day')) AS units (unit)
WHERE metric = 'events'
GROUP BY 1, 2, 3;
