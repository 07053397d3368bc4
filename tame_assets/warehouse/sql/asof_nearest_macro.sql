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
-- wins (as pandas merge_asof(direction="nearest")). Same method as asof_nearest.sql.
-- Run `SET asof_loop_join_threshold = 0;` first in a DuckDB shell: otherwise DuckDB may plan the
-- ASOF JOINs as nested loops (from an underestimated left size) and large merges take minutes.
-- Installed in every Warehouse.connect() connection and in tame.duckdb; or run this file in a shell.
CREATE OR REPLACE MACRO asof_nearest(left_table, right_table, left_key, right_key,
                                     tolerance_s := 60, key_map := MAP {}::MAP(VARCHAR, VARCHAR)) AS TABLE
WITH __l AS MATERIALIZED (
    SELECT row_number() OVER () AS __row, __ll AS __lrow,
           CAST(struct_extract(__ll, 'time') AS TIMESTAMP) AS __lt,
           coalesce(key_map[CAST(struct_extract(__ll, left_key) AS VARCHAR)],
                    CAST(struct_extract(__ll, left_key) AS VARCHAR)) AS __key
    FROM query_table(left_table) AS __ll
),
__r AS (
    SELECT __rr AS __rrow, CAST(struct_extract(__rr, 'time') AS TIMESTAMP) AS __rt,
           CAST(struct_extract(__rr, right_key) AS VARCHAR) AS __key
    FROM query_table(right_table) AS __rr
    WHERE struct_extract(__rr, 'time') IS NOT NULL
),
__j AS (
    SELECT __l.__row, __l.__lrow, epoch_us(__l.__lt) AS __lus,
           __b.__rrow AS __brow, epoch_us(__b.__rt) AS __bus,
           __f.__rrow AS __frow, epoch_us(__f.__rt) AS __fus
    FROM __l
    ASOF LEFT JOIN __r AS __b ON __l.__key = __b.__key AND __l.__lt >= __b.__rt
    ASOF LEFT JOIN __r AS __f ON __l.__key = __f.__key AND __l.__lt <= __f.__rt
),
__s AS (
    SELECT __row, __lrow, __brow, __frow, __bus, __fus, __lus,
        CASE
            WHEN __bus IS NOT NULL AND (__fus IS NULL OR __lus - __bus <= __fus - __lus)
                THEN CASE WHEN __lus - __bus <= round(tolerance_s * 1e6) THEN 'b' END
            WHEN __fus IS NOT NULL AND __fus - __lus <= round(tolerance_s * 1e6) THEN 'f'
        END AS __side
    FROM __j
),
__m AS (
    SELECT __row, __lrow,
           CASE __side WHEN 'b' THEN __brow WHEN 'f' THEN __frow END AS __rrow,
           CAST(CASE __side WHEN 'b' THEN __bus - __lus WHEN 'f' THEN __fus - __lus END AS DOUBLE) / 1e6
               AS __dt
    FROM __s
),
__rcols AS (
    SELECT __row, COLUMNS(lambda __c: __c <> '__row') AS 'right_\0'
    FROM (SELECT __row, unnest(__rrow) FROM __m)
)
SELECT unnest(__m.__lrow), __rcols.* EXCLUDE (__row), __m.__dt AS dt_s
FROM __m JOIN __rcols USING (__row)
ORDER BY __m.__row;
