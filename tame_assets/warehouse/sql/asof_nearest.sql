-- Nearest-in-time match of every left row with one right row of the same key, in either direction.
-- Template filled by tame_assets.warehouse.merge.asof_nearest_sql (string.Template, $-placeholders):
--   $left          left relation: a table/view name or a parenthesised query
--   $right         right relation (same forms)
--   $left_time     left time column (quoted identifier); $right_time likewise
--   $left_key_expr  VARCHAR expression of the left key after the key mapping, e.g.
--                  CASE "station" WHEN 'NYA' THEN 'NAL' ELSE "station" END (a constant when unkeyed)
--   $right_key_expr VARCHAR expression of the right key, e.g. CAST("site" AS VARCHAR)
--   $left_cols     the left columns to output, in order ("time", "station", ...)
--   $right_select  right columns renamed to positional aliases: "cbh_m" AS __c0, ...
--   $bw_cols       __b.__c0 AS __b0, ...      $fw_cols   __f.__c0 AS __f0, ...
--   $picked_cols   CASE __side WHEN 'b' THEN __b0 WHEN 'f' THEN __f0 END AS "cbh_m", ...
--   $tolerance_us  tolerance in integer microseconds (inclusive)
--   $dt_column     name of the signed offset column (right time − left time, seconds, DOUBLE)
--   $keep          TRUE keeps unmatched left rows (NULL right columns); FALSE drops them
--
-- Method: two ASOF LEFT JOINs on a narrow copy of the left side, backward (latest right row at or
-- before the left time, `>=`) and forward (earliest at or after, `<=`); the closer one wins and on
-- an exact tie the BACKWARD (earlier) row wins, as pandas merge_asof(direction="nearest"). The
-- tolerance is applied after the joins (inside ON it would turn the plan into a nested loop).
-- Which of several right rows with the same key AND the same time is taken is unspecified.
-- Left rows keep their input order (numbered once, in a MATERIALIZED CTE).
WITH __full AS MATERIALIZED (
    SELECT *, row_number() OVER () AS __row FROM $left
),
__l AS (
    SELECT __row, CAST($left_time AS TIMESTAMP) AS __lt, $left_key_expr AS __key FROM __full
),
__r AS (
    SELECT $right_key_expr AS __key, CAST($right_time AS TIMESTAMP) AS __rt, $right_select
    FROM $right
    WHERE $right_time IS NOT NULL
),
__j AS (
    SELECT __l.__row, epoch_us(__l.__lt) AS __lus,
           epoch_us(__b.__rt) AS __bus, epoch_us(__f.__rt) AS __fus, $bw_cols, $fw_cols
    FROM __l
    ASOF LEFT JOIN __r AS __b ON __l.__key = __b.__key AND __l.__lt >= __b.__rt
    ASOF LEFT JOIN __r AS __f ON __l.__key = __f.__key AND __l.__lt <= __f.__rt
),
__s AS (
    SELECT *,
        CASE
            WHEN __bus IS NOT NULL AND (__fus IS NULL OR __lus - __bus <= __fus - __lus)
                THEN CASE WHEN __lus - __bus <= $tolerance_us THEN 'b' END
            WHEN __fus IS NOT NULL AND __fus - __lus <= $tolerance_us THEN 'f'
        END AS __side
    FROM __j
)
SELECT $left_cols, $picked_cols,
       CAST(CASE __s.__side WHEN 'b' THEN __s.__bus - __s.__lus
                            WHEN 'f' THEN __s.__fus - __s.__lus END AS DOUBLE) / 1e6 AS $dt_column
FROM __full JOIN __s USING (__row)
WHERE $keep OR __s.__side IS NOT NULL
ORDER BY __full.__row
