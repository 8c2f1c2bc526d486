-- activity_event_totals (009) recomputed from activity_rollups in one grouped
-- statement: for bulk loaders, which insert roll-ups with triggers off
-- (scripts/load_dataset.py: 880,000 roll-up rows through the row trigger took
-- 7.5 minutes), and for operators who want to check the summary against its
-- source (compare before and after). The same fold as 009's backfill.
CREATE FUNCTION activity_event_totals_rebuild() RETURNS void
LANGUAGE sql AS $$
    DELETE FROM activity_event_totals;
    INSERT INTO activity_event_totals (unit, bucket_start, dimension, value)
    SELECT unit, date_trunc(unit, bucket_start, 'UTC'), dimension, sum(value)
    FROM activity_rollups CROSS JOIN (VALUES ('hour'), ('day')) AS units (unit)
    WHERE metric = 'events'
    GROUP BY 1, 2, 3;
$$;
