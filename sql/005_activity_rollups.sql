-- Per-bucket activity counters, written only by the rollup_counters timer
-- (moved there from Redis once a bucket is closed). Read by the activity
-- report: WHERE metric = ... AND bucket_start range, served by the primary key.

CREATE TABLE activity_rollups (
    bucket_start timestamptz NOT NULL,
    bucket_seconds integer NOT NULL CHECK (bucket_seconds > 0),
    metric text NOT NULL,
    dimension text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (bucket_start, bucket_seconds, metric, dimension)
);
