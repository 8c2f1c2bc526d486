-- Monthly range partitions for the large history tables.
--
-- The history tables are partitioned by month on their event time, with a
-- DEFAULT partition catching anything outside the months created so far. A
-- maintenance timer calls ensure_monthly_partitions ahead of time, and
-- retention drops whole months with drop_monthly_partitions_before instead
-- of deleting rows (no bloat, no long vacuum). Bounds are UTC months, whatever
-- the session's TimeZone.

CREATE FUNCTION monthly_partition_name(parent regclass, month date)
RETURNS text
LANGUAGE sql
STABLE
AS $$
    SELECT c.relname || '_p' || to_char(month, 'YYYY_MM')
    FROM pg_class AS c
    WHERE c.oid = parent
$$;

COMMENT ON FUNCTION monthly_partition_name(regclass, date) IS
    'Name of the monthly partition of parent holding month (e.g. forum_activity_p2024_05).';


CREATE FUNCTION ensure_monthly_partitions(parent regclass, from_month date, months integer)
RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
    parent_schema text;
    key_column text;
    default_partition regclass;
    month_start date;
    lower_bound text;
    upper_bound text;
    partition_name text;
    has_rows boolean;
BEGIN
    IF months IS NULL OR months < 1 THEN
        RAISE EXCEPTION 'months must be at least 1, got %', months;
    END IF;

    SELECT n.nspname, a.attname, NULLIF(p.partdefid, 0)::regclass
    INTO parent_schema, key_column, default_partition
    FROM pg_partitioned_table AS p
    JOIN pg_class AS c ON c.oid = p.partrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_attribute AS a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE p.partrelid = parent AND p.partstrat = 'r' AND p.partnatts = 1;
    IF key_column IS NULL THEN
        RAISE EXCEPTION '% is not range-partitioned on a single column', parent;
    END IF;

    -- Two maintenance runs at once would race on CREATE TABLE; take turns.
    PERFORM pg_advisory_xact_lock(parent::oid::bigint);

    FOR i IN 0 .. months - 1 LOOP
        month_start := (date_trunc('month', from_month) + make_interval(months => i))::date;
        partition_name := monthly_partition_name(parent, month_start);
        CONTINUE WHEN to_regclass(format('%I.%I', parent_schema, partition_name)) IS NOT NULL;

        -- Explicit UTC offsets: the bound must not depend on the session TimeZone.
        lower_bound := to_char(month_start, 'YYYY-MM-DD') || ' 00:00:00+00';
        upper_bound := to_char((month_start + interval '1 month')::date, 'YYYY-MM-DD')
            || ' 00:00:00+00';

        has_rows := false;
        IF default_partition IS NOT NULL THEN
            EXECUTE format(
                'SELECT EXISTS (SELECT 1 FROM %s WHERE %I >= %L::timestamptz AND %I < %L::timestamptz)',
                default_partition, key_column, lower_bound, key_column, upper_bound
            ) INTO has_rows;
        END IF;

        IF has_rows THEN
            -- Rows of this month already sit in DEFAULT (events that arrived before
            -- their month had a partition). CREATE ... PARTITION OF would fail on
            -- them, so build the table, move the rows, then attach it.
            EXECUTE format(
                'CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                parent_schema, partition_name, parent
            );
            EXECUTE format(
                'WITH moved AS (DELETE FROM %s WHERE %I >= %L::timestamptz AND %I < %L::timestamptz '
                'RETURNING *) INSERT INTO %I.%I SELECT * FROM moved',
                default_partition, key_column, lower_bound, key_column, upper_bound,
                parent_schema, partition_name
            );
            EXECUTE format(
                'ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                parent, parent_schema, partition_name, lower_bound, upper_bound
            );
        ELSE
            EXECUTE format(
                'CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                parent_schema, partition_name, parent, lower_bound, upper_bound
            );
        END IF;
        RETURN NEXT partition_name;
    END LOOP;
END
$$;

COMMENT ON FUNCTION ensure_monthly_partitions(regclass, date, integer) IS
    'Creates the missing monthly partitions of parent for months starting at from_month, '
    'moving rows out of the DEFAULT partition when needed; returns the names created.';


CREATE FUNCTION drop_monthly_partitions_before(parent regclass, before date)
RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
    parent_schema text;
    key_column text;
    default_partition regclass;
    cutoff date := date_trunc('month', before)::date;
    child record;
BEGIN
    SELECT n.nspname, a.attname, NULLIF(p.partdefid, 0)::regclass
    INTO parent_schema, key_column, default_partition
    FROM pg_partitioned_table AS p
    JOIN pg_class AS c ON c.oid = p.partrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_attribute AS a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE p.partrelid = parent AND p.partstrat = 'r' AND p.partnatts = 1;
    IF key_column IS NULL THEN
        RAISE EXCEPTION '% is not range-partitioned on a single column', parent;
    END IF;

    PERFORM pg_advisory_xact_lock(parent::oid::bigint);

    -- Only partitions named by ensure_monthly_partitions are dropped, and only
    -- when the whole month lies before the cutoff month.
    FOR child IN
        SELECT c.relname
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent
          AND c.relname ~ '_p[0-9]{4}_[0-9]{2}$'
          AND to_date(right(c.relname, 7), 'YYYY_MM') < cutoff
          AND c.relname = monthly_partition_name(parent, to_date(right(c.relname, 7), 'YYYY_MM'))
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I.%I', parent_schema, child.relname);
        RETURN NEXT child.relname;
    END LOOP;

    -- Old stragglers in DEFAULT go row by row; DEFAULT is meant to stay small.
    IF default_partition IS NOT NULL THEN
        EXECUTE format(
            'DELETE FROM %s WHERE %I < %L::timestamptz',
            default_partition, key_column, to_char(cutoff, 'YYYY-MM-DD') || ' 00:00:00+00'
        );
    END IF;
END
$$;

COMMENT ON FUNCTION drop_monthly_partitions_before(regclass, date) IS
    'Retention: drops the monthly partitions of parent entirely before the month of before, '
    'and deletes older rows from its DEFAULT partition; returns the names dropped.';
