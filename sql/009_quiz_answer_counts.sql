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
    RETURN NULL;
END
$$;

CREATE FUNCTION quiz_answer_counts_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE quiz_answer_counts;
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

-- Quiz report, the other figures: every attempt of one quiz, index-only.
CREATE INDEX quiz_attempts_quiz_report_idx ON quiz_attempts (quiz_id)
    INCLUDE (student_id, score, is_passed, duration_seconds, attempt_number);
