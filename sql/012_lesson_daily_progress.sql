-- Lesson report, progress_over_time (docs/reports.md): per UTC day, the
-- distinct students active and the average of each one's best progress that
-- day. Reading it from lesson_progress_events costs one row per event (the
-- busiest lesson of the 10 M data set: 200,000 in 30 days, ~300 ms); these
-- two summaries make it one row per day.
--
-- lesson_daily_progress: each student's best progress per (lesson, day);
-- lesson_daily_totals: per (lesson, day) the number of those students and the
-- sum of their bests. Both are kept by a statement trigger on
-- lesson_progress_events, so the persist path's SQL is unchanged: one sorted
-- upsert raises the students' bests, and RETURNING says by how much (the
-- row's previous best is kept in raised_from by the same UPDATE, which sees
-- the latest committed version of the row even under concurrency), so the
-- totals change by exactly the difference each event made. (Inline in the
-- trigger rather than a shared function: measured, that halves its cost.)

CREATE TABLE lesson_daily_progress (
    lesson_id uuid NOT NULL,
    day date NOT NULL,
    student_id uuid NOT NULL,
    best_percent double precision NOT NULL,
    -- The best before the last raise; NULL until the first raise.
    raised_from double precision,
    PRIMARY KEY (lesson_id, day, student_id)
);
-- Erasure and export find the student's rows.
CREATE INDEX lesson_daily_progress_student_idx ON lesson_daily_progress (student_id);

CREATE TABLE lesson_daily_totals (
    lesson_id uuid NOT NULL,
    day date NOT NULL,
    students bigint NOT NULL,
    best_sum double precision NOT NULL,
    PRIMARY KEY (lesson_id, day)
);

-- New events raise the bests of (lesson, day, student), and the day's totals
-- change by the difference each raise made.
CREATE FUNCTION lesson_daily_progress_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH raised AS (
        INSERT INTO lesson_daily_progress AS d (lesson_id, day, student_id, best_percent)
        SELECT lesson_id, (last_accessed_at AT TIME ZONE 'UTC')::date, student_id,
               max(progress_percent)
        FROM added
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (lesson_id, day, student_id) DO UPDATE
            SET raised_from = d.best_percent, best_percent = excluded.best_percent
            WHERE excluded.best_percent > d.best_percent
        RETURNING lesson_id, day, raised_from, best_percent
    )
    INSERT INTO lesson_daily_totals AS t (lesson_id, day, students, best_sum)
    SELECT lesson_id, day,
           -- A row without raised_from was just inserted (an update sets it).
           count(*) FILTER (WHERE raised_from IS NULL),
           sum(best_percent - coalesce(raised_from, 0))
    FROM raised
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (lesson_id, day) DO UPDATE SET
        students = t.students + excluded.students,
        best_sum = t.best_sum + excluded.best_sum;
    RETURN NULL;
END
$$;

-- Events deleted (erasure): the days they touched are re-read from the events
-- that remain (usually none: an erasure deletes all of a student's events).
CREATE FUNCTION lesson_daily_progress_subtract() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM lesson_daily_progress AS d
    USING (SELECT DISTINCT lesson_id, (last_accessed_at AT TIME ZONE 'UTC')::date AS day,
                  student_id
           FROM removed) AS gone
    WHERE (d.lesson_id, d.day, d.student_id) = (gone.lesson_id, gone.day, gone.student_id);
    -- Back in: the best of the events that remain of each touched day.
    WITH remaining AS (
        INSERT INTO lesson_daily_progress (lesson_id, day, student_id, best_percent)
        SELECT e.lesson_id, gone.day, e.student_id, max(e.progress_percent)
        FROM lesson_progress_events AS e
        JOIN (SELECT DISTINCT lesson_id, student_id,
                     (last_accessed_at AT TIME ZONE 'UTC')::date AS day
              FROM removed) AS gone
            ON e.lesson_id = gone.lesson_id AND e.student_id = gone.student_id
           AND e.last_accessed_at >= gone.day::timestamp AT TIME ZONE 'UTC'
           AND e.last_accessed_at < (gone.day + 1)::timestamp AT TIME ZONE 'UTC'
        GROUP BY 1, 2, 3
        RETURNING lesson_id, day, best_percent
    )
    INSERT INTO lesson_daily_totals AS t (lesson_id, day, students, best_sum)
    SELECT lesson_id, day, count(*), sum(best_percent) FROM remaining
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (lesson_id, day) DO UPDATE SET
        students = t.students + excluded.students,
        best_sum = t.best_sum + excluded.best_sum;
    RETURN NULL;
END
$$;

-- Summary rows deleted (by the trigger above, by an erasure: the table names
-- the student, or by retention): their students leave the day's totals.
CREATE FUNCTION lesson_daily_totals_subtract() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        SELECT lesson_id, day, count(*) AS students, sum(best_percent) AS best_sum
        FROM removed GROUP BY 1, 2
    )
    UPDATE lesson_daily_totals AS t SET
        students = t.students - gone.students,
        best_sum = t.best_sum - gone.best_sum
    FROM gone
    WHERE (t.lesson_id, t.day) = (gone.lesson_id, gone.day);
    -- A statement of its own: one statement cannot update a row and delete it.
    DELETE FROM lesson_daily_totals AS t
    USING (SELECT DISTINCT lesson_id, day FROM removed) AS gone
    WHERE (t.lesson_id, t.day) = (gone.lesson_id, gone.day) AND t.students <= 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION lesson_daily_progress_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE lesson_daily_progress, lesson_daily_totals;
    RETURN NULL;
END
$$;

CREATE TRIGGER lesson_daily_progress_insert AFTER INSERT ON lesson_progress_events
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION lesson_daily_progress_add();
CREATE TRIGGER lesson_daily_progress_delete AFTER DELETE ON lesson_progress_events
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION lesson_daily_progress_subtract();
CREATE TRIGGER lesson_daily_progress_truncate AFTER TRUNCATE ON lesson_progress_events
    FOR EACH STATEMENT EXECUTE FUNCTION lesson_daily_progress_clear();
CREATE TRIGGER lesson_daily_totals_delete AFTER DELETE ON lesson_daily_progress
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION lesson_daily_totals_subtract();

-- Progress events stored before this migration.
INSERT INTO lesson_daily_progress (lesson_id, day, student_id, best_percent)
SELECT lesson_id, (last_accessed_at AT TIME ZONE 'UTC')::date, student_id, max(progress_percent)
FROM lesson_progress_events
GROUP BY 1, 2, 3;
INSERT INTO lesson_daily_totals (lesson_id, day, students, best_sum)
SELECT lesson_id, day, count(*), sum(best_percent)
FROM lesson_daily_progress
GROUP BY 1, 2;

-- The lesson report no longer reads lesson_progress_events by lesson, and
-- nothing else does: its widest index goes, which the hottest write path no
-- longer has to maintain.
DROP INDEX lesson_progress_events_lesson_idx;
