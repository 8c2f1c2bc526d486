-- Forum contributors report (docs/reports.md): per (UTC day, user) the posts
-- and replies written and the likes received, kept at write time, so the
-- report sums a few thousand summary rows instead of matching every post of
-- the top authors against every like of the window (2-3 s at 10 M events).
--
-- A like names its post, not the post's author. forum_post_authors records
-- who wrote each post or reply (the first stored author wins) and is the lock
-- that makes crediting a like exact when the like and its post arrive in
-- either order, in one message or in two concurrent ones:
--
--   * every statement that stores posts or likes first upserts the registry
--     row of each post it touches, in post_id order (ON CONFLICT DO UPDATE
--     locks the row even when its WHERE is false), so two messages touching
--     one post do their crediting one after the other;
--   * a like is credited by the statement that stores it when the post's
--     author is known by then; otherwise it waits in forum_waiting_likes, and
--     the statement that records the author takes the waiting likes out and
--     credits them. Taking them out is a separate statement, with a snapshot
--     taken after the lock: every message that stored a waiting like of the
--     post earlier has committed by then.
--
-- Invariant: a like is counted in its post's author's row for the like's day
-- exactly when the registry names the author and the liker is someone else;
-- otherwise, while the author is unknown, it is counted in
-- forum_waiting_likes. The delete trigger subtracts under the same rule,
-- after taking the same locks.

CREATE TABLE forum_post_authors (
    post_id uuid PRIMARY KEY,
    -- NULL while likes of the post are stored and the post is not (yet).
    user_id uuid,
    -- The post's UTC day (or the first like's, while the author is unknown):
    -- retention deletes the rows older than the history it keeps.
    day date NOT NULL
);
-- Erasure and export find the user's rows.
CREATE INDEX forum_post_authors_user_idx ON forum_post_authors (user_id);

CREATE TABLE forum_contributions (
    day date NOT NULL,
    user_id uuid NOT NULL,
    posts bigint NOT NULL,
    replies bigint NOT NULL,
    likes_received bigint NOT NULL,
    -- The report reads a window of days; the primary key serves it.
    PRIMARY KEY (day, user_id)
);
CREATE INDEX forum_contributions_user_idx ON forum_contributions (user_id);

-- Likes of posts whose author is not known yet, per (post, UTC day, liker).
CREATE TABLE forum_waiting_likes (
    post_id uuid NOT NULL,
    day date NOT NULL,
    user_id uuid NOT NULL,
    likes bigint NOT NULL,
    PRIMARY KEY (post_id, day, user_id)
);
CREATE INDEX forum_waiting_likes_user_idx ON forum_waiting_likes (user_id);

CREATE FUNCTION forum_contributions_add() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    authored uuid[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM added) THEN
        RETURN NULL;
    END IF;
    -- 1. Lock (and create) the registry row of every post touched, sorted;
    --    keep the posts whose author this statement records.
    WITH touched AS (
        SELECT DISTINCT ON (post_id) post_id,
               CASE WHEN action_type = 'like' THEN NULL ELSE user_id END AS user_id,
               (created_at AT TIME ZONE 'UTC')::date AS day
        FROM added
        -- The earliest post or reply of the post id names its author.
        ORDER BY post_id, action_type = 'like', created_at, event_id
    ), registered AS (
        INSERT INTO forum_post_authors AS a (post_id, user_id, day)
        SELECT post_id, user_id, day FROM touched
        ORDER BY post_id
        ON CONFLICT (post_id) DO UPDATE
            SET user_id = excluded.user_id, day = excluded.day
            WHERE a.user_id IS NULL AND excluded.user_id IS NOT NULL
        RETURNING post_id, user_id
    )
    SELECT coalesce(array_agg(post_id), '{}') INTO authored
    FROM registered WHERE user_id IS NOT NULL;

    -- 2. A new statement, so a new snapshot: the likes that waited for the
    --    authors just recorded, from every message that locked their
    --    registry rows before step 1 did, are visible now.
    WITH likes AS (
        SELECT l.post_id, (l.created_at AT TIME ZONE 'UTC')::date AS day, l.user_id,
               a.user_id AS author
        FROM added AS l
        JOIN forum_post_authors AS a ON a.post_id = l.post_id
        WHERE l.action_type = 'like'
    ), waiting AS (
        INSERT INTO forum_waiting_likes AS w (post_id, day, user_id, likes)
        SELECT post_id, day, user_id, count(*) FROM likes
        WHERE author IS NULL
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (post_id, day, user_id) DO UPDATE SET likes = w.likes + excluded.likes
    ), released AS (
        DELETE FROM forum_waiting_likes
        WHERE cardinality(authored) > 0 AND post_id = ANY(authored)
        RETURNING post_id, day, user_id, likes
    )
    INSERT INTO forum_contributions AS c (day, user_id, posts, replies, likes_received)
    SELECT day, user_id, sum(posts), sum(replies), sum(likes)
    FROM (
        -- Posts and replies of this statement.
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, user_id,
               count(*) FILTER (WHERE action_type = 'post') AS posts,
               count(*) FILTER (WHERE action_type = 'reply') AS replies,
               0 AS likes
        FROM added WHERE action_type <> 'like'
        GROUP BY 1, 2
        UNION ALL
        -- This statement's likes of posts whose author is known ...
        SELECT day, author, 0, 0, count(*) FROM likes
        WHERE author IS NOT NULL AND user_id <> author
        GROUP BY 1, 2
        UNION ALL
        -- ... and the likes that waited for an author recorded in step 1.
        SELECT r.day, a.user_id, 0, 0, sum(r.likes)
        FROM released AS r
        JOIN forum_post_authors AS a ON a.post_id = r.post_id
        WHERE r.user_id <> a.user_id
        GROUP BY 1, 2
    ) AS delta
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (day, user_id) DO UPDATE SET
        posts = c.posts + excluded.posts,
        replies = c.replies + excluded.replies,
        likes_received = c.likes_received + excluded.likes_received;
    RETURN NULL;
END
$$;

-- The statement adding (sign 1) or subtracting (sign -1) what the forum rows
-- of `source` (a table, or a trigger's transition table) count for under the
-- registry as it stands: posts and replies per (day, author), credited likes
-- per (like's day, post's author), waiting likes per (post, day, liker).
-- Dynamic because a trigger's transition table can only be read by its own
-- function; used by the delete trigger and by the backfill below (the insert
-- trigger, the hot path, has its own static statement).
CREATE FUNCTION forum_contributions_change(source text, sign integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $f$
    SELECT format($q$
        WITH waiting AS (
            INSERT INTO forum_waiting_likes AS w (post_id, day, user_id, likes)
            SELECT l.post_id, (l.created_at AT TIME ZONE 'UTC')::date, l.user_id, %2$s * count(*)
            FROM %1$I AS l
            JOIN forum_post_authors AS a ON a.post_id = l.post_id
            WHERE l.action_type = 'like' AND a.user_id IS NULL
            GROUP BY 1, 2, 3
            ORDER BY 1, 2, 3
            ON CONFLICT (post_id, day, user_id) DO UPDATE SET likes = w.likes + excluded.likes
        )
        INSERT INTO forum_contributions AS c (day, user_id, posts, replies, likes_received)
        SELECT day, user_id, %2$s * sum(posts), %2$s * sum(replies), %2$s * sum(likes)
        FROM (
            SELECT (created_at AT TIME ZONE 'UTC')::date AS day, user_id,
                   count(*) FILTER (WHERE action_type = 'post') AS posts,
                   count(*) FILTER (WHERE action_type = 'reply') AS replies,
                   0 AS likes
            FROM %1$I WHERE action_type <> 'like'
            GROUP BY 1, 2
            UNION ALL
            SELECT (l.created_at AT TIME ZONE 'UTC')::date, a.user_id, 0, 0, count(*)
            FROM %1$I AS l
            JOIN forum_post_authors AS a ON a.post_id = l.post_id
            WHERE l.action_type = 'like' AND a.user_id IS NOT NULL AND l.user_id <> a.user_id
            GROUP BY 1, 2
        ) AS parts
        GROUP BY 1, 2
        ORDER BY 1, 2
        ON CONFLICT (day, user_id) DO UPDATE SET
            posts = c.posts + excluded.posts,
            replies = c.replies + excluded.replies,
            likes_received = c.likes_received + excluded.likes_received
    $q$, source, sign)
$f$;

CREATE FUNCTION forum_contributions_subtract() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM removed) THEN
        RETURN NULL;
    END IF;
    -- The same locks, in the same order, as the insert trigger: a post
    -- recorded concurrently either sees these likes gone or is seen here.
    PERFORM 1 FROM forum_post_authors
    WHERE post_id IN (SELECT post_id FROM removed WHERE action_type = 'like')
    ORDER BY post_id
    FOR UPDATE;
    EXECUTE forum_contributions_change('removed', -1);
    -- Statements of their own (one statement cannot update a row and delete
    -- it): the rows left empty are among the removed rows' users and the
    -- authors of the removed likes' posts.
    DELETE FROM forum_waiting_likes
    WHERE likes <= 0 AND user_id IN (SELECT user_id FROM removed WHERE action_type = 'like');
    DELETE FROM forum_contributions AS c
    WHERE c.posts <= 0 AND c.replies <= 0 AND c.likes_received <= 0
      AND c.user_id IN (
          SELECT user_id FROM removed
          UNION
          SELECT a.user_id FROM forum_post_authors AS a
          WHERE a.post_id IN (SELECT post_id FROM removed WHERE action_type = 'like')
      );
    RETURN NULL;
END
$$;

CREATE FUNCTION forum_contributions_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE forum_contributions, forum_post_authors, forum_waiting_likes;
    RETURN NULL;
END
$$;

CREATE TRIGGER forum_contributions_insert AFTER INSERT ON forum_activity
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION forum_contributions_add();
CREATE TRIGGER forum_contributions_delete AFTER DELETE ON forum_activity
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION forum_contributions_subtract();
CREATE TRIGGER forum_contributions_truncate AFTER TRUNCATE ON forum_activity
    FOR EACH STATEMENT EXECUTE FUNCTION forum_contributions_clear();

-- Forum activity stored before this migration.
INSERT INTO forum_post_authors (post_id, user_id, day)
SELECT DISTINCT ON (post_id) post_id,
       CASE WHEN action_type = 'like' THEN NULL ELSE user_id END,
       (created_at AT TIME ZONE 'UTC')::date
FROM forum_activity
ORDER BY post_id, action_type = 'like', created_at, event_id;

DO $$
BEGIN
    EXECUTE forum_contributions_change('forum_activity', 1);
END
$$;
