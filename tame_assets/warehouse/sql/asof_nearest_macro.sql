-- Reusable DuckDB table macro: the nearest-in-time as-of merge for the DuckDB shell.
--
--   SELECT * FROM asof_nearest('asim_predictions', 'magnetometer', 'station', 'station',
--                              tolerance_s := 60, key_map := MAP {'NYA': 'NAL'});
--
-- Arguments: left and right table/view names (strings, resolved with query_table), the key column
-- of each side (strings), tolerance_s (seconds, inclusive, default 60) and key_map (left key value →
-- right key value; unmapped values are compared unchanged). Both tables need a `time` column.
-- Output: every left column, then EVERY right column prefixed with `right_` (including right_time
-- and the right key), then dt_s = right time − left time in seconds (DOUBLE). Unmatched left rows
-- are kept with NULLs. Rule: nearest in either direction; on an exact tie the earlier right row
-- wins (as pandas merge_asof(direction="nearest")). Same method as asof_nearest.sql (one ASOF join
-- against each right row's validity interval, same rule for equal right times).
-- Run `SET asof_loop_join_threshold = 0;` first in a DuckDB shell: otherwise DuckDB may plan the
-- ASOF JOINs as nested loops (from an underestimated left size) and large merges take minutes.
-- Installed in every Warehouse.connect() connection and in tame.duckdb; or run this file in a shell.
CREATE OR REPLACE MACRO asof_nearest(left_table, right_table, left_key, right_key,
                                     tolerance_s := 60, key_map := MAP {}::MAP(VARCHAR, VARCHAR)) AS TABLE
WITH __r AS (
    SELECT __rr AS __rrec, CAST(struct_extract(__rr, right_key) AS VARCHAR) AS __key,
           epoch_us(CAST(struct_extract(__rr, 'time') AS TIMESTAMP)) AS __rt, row_number() OVER () AS __rrow
    FROM query_table(right_table) AS __rr
    WHERE struct_extract(__rr, 'time') IS NOT NULL
),
__n AS (
    SELECT __key, __rt, __rrec, lag(__rt) OVER __w AS __prev, lead(__rt) OVER __w AS __next
    FROM __r
    WINDOW __w AS (PARTITION BY __key ORDER BY __rt, __rrow)
),
__i AS (
    SELECT *, CASE WHEN __prev IS NULL THEN -9223372036854775807
                   WHEN __prev = __rt THEN __rt - 1
                   ELSE __prev + (__rt - __prev) // 2 END AS __lo
    FROM __n
),
__v AS (
    SELECT __key, __rt, __lo, __rrec
    FROM __i
    WHERE __next IS DISTINCT FROM __rt OR (__prev IS DISTINCT FROM __rt AND __lo < __rt - 1)
),
__l AS (
    SELECT __ll AS __lrec, row_number() OVER () AS __row,
           epoch_us(CAST(struct_extract(__ll, 'time') AS TIMESTAMP)) AS __lus,
           coalesce(key_map[CAST(struct_extract(__ll, left_key) AS VARCHAR)],
                    CAST(struct_extract(__ll, left_key) AS VARCHAR)) AS __key
    FROM query_table(left_table) AS __ll
),
__m AS (
    SELECT __l.__row, __l.__lrec,
           CASE WHEN abs(__v.__rt - __l.__lus) <= round(tolerance_s * 1e6) THEN __v.__rrec END AS __rrec,
           CASE WHEN abs(__v.__rt - __l.__lus) <= round(tolerance_s * 1e6)
                THEN CAST(__v.__rt - __l.__lus AS DOUBLE) / 1e6 END AS __dt
    FROM __l ASOF LEFT JOIN __v ON __l.__key = __v.__key AND __l.__lus > __v.__lo
),
__u AS (
    SELECT __row, __lrec, __dt, unnest(__rrec) FROM __m
),
__p AS (
    SELECT __row, __lrec, __dt, COLUMNS(lambda __c: __c NOT IN ('__row', '__lrec', '__dt')) AS 'right_\0' FROM __u
)
SELECT unnest(__lrec), * EXCLUDE (__row, __lrec, __dt), __dt AS dt_s
FROM __p
ORDER BY __row;
