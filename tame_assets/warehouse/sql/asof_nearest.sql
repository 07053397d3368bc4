-- Nearest-in-time match of every left row with one right row of the same key, in either direction.
-- Template filled by tame_assets.warehouse.merge.asof_nearest_sql (string.Template, $-placeholders):
--   $left          left relation: a table/view name or a parenthesised query
--   $right         right relation (same forms)
--   $left_time     left time column (quoted identifier); $right_time likewise
--   $left_key_expr  the left key after the key mapping, as the type keys are compared in: the right
--                  relation's key values as an ENUM, e.g. TRY_CAST(CASE CAST("station" AS VARCHAR)
--                  WHEN 'NYA' THEN 'NAL' ELSE CAST("station" AS VARCHAR) END AS ENUM('LYR', 'NAL'))
--                  (NULL for a value the right side lacks), else VARCHAR; 0 when unkeyed
--   $right_key_expr the right key likewise, e.g. TRY_CAST(CAST("site" AS VARCHAR) AS ENUM('LYR', 'NAL'))
--   $left_cols     the left columns to output, in order: __l."time", __l."station", ...
--   $right_select  right columns renamed to positional aliases: "cbh_m" AS __c0, ...
--   $right_carry   the positional aliases again: __c0, ...
--   $picked_cols   CASE WHEN <within tolerance> THEN __v.__c0 END AS "cbh_m", ...
--   $within        the tolerance test: abs(__v.__rt - __l.__lus) <= <tolerance in integer µs> (inclusive)
--   $dt_column     name of the signed offset column (right time − left time, seconds, DOUBLE)
--   $keep          TRUE keeps unmatched left rows (NULL right columns); FALSE drops them
--   $order_by      ORDER BY __l.__row (left input order) or nothing
--
-- Method: ONE ASOF LEFT JOIN against each right row's validity interval. Per key, sorted by time,
-- right row j owns the left times t with lo_j < t <= lo_(j+1), where lo_j is the midpoint between
-- its previous right time and its own (window functions lag/lead over the right rows sorted by key
-- and time, one sort without PARTITION BY, which would sort a one-station merge on one thread; the
-- neighbour of another key counts as none; keys are compared as ENUM values, small integers that
-- sort and match faster than strings, which took a quarter of the time; integer µs: the floor of the
-- midpoint is exact for integer left times). The strict `>` sends a left time exactly at a midpoint
-- to the EARLIER row, as pandas merge_asof(direction="nearest"). Several right rows with the same
-- key and time (input order = row number): the last one owns that time and later, the first one the
-- earlier side (lo_last = t − 1 µs; the rows in between are dropped), as pandas does (its backward
-- search takes the last, the forward search the first). The tolerance is tested after the join
-- (inside ON it would turn the plan into a nested loop). Times are compared as epoch microseconds.
-- Left rows carry their row number; $order_by restores the input order (one sort of the output).
WITH __r AS (
    SELECT $right_key_expr AS __key, epoch_us(CAST($right_time AS TIMESTAMP)) AS __rt, $right_select,
           row_number() OVER () AS __rrow
    FROM $right
    WHERE $right_time IS NOT NULL
),
__n AS (
    SELECT __key, __rt, $right_carry,
           CASE WHEN lag(__key) OVER __w = __key THEN lag(__rt) OVER __w END AS __prev,
           CASE WHEN lead(__key) OVER __w = __key THEN lead(__rt) OVER __w END AS __next
    FROM __r
    WHERE __key IS NOT NULL
    WINDOW __w AS (ORDER BY __key, __rt, __rrow)
),
__i AS (
    SELECT *, CASE WHEN __prev IS NULL THEN -9223372036854775807
                   WHEN __prev = __rt THEN __rt - 1
                   ELSE __prev + (__rt - __prev) // 2 END AS __lo
    FROM __n
),
__v AS (
    SELECT __key, __rt, __lo, $right_carry
    FROM __i
    -- keep the last of equal times, and the first of them if its interval below that time is not empty
    WHERE __next IS DISTINCT FROM __rt OR (__prev IS DISTINCT FROM __rt AND __lo < __rt - 1)
),
__l AS (
    SELECT *, $left_key_expr AS __key, epoch_us(CAST($left_time AS TIMESTAMP)) AS __lus,
           row_number() OVER () AS __row
    FROM $left
)
SELECT $left_cols, $picked_cols,
       CASE WHEN $within THEN CAST(__v.__rt - __l.__lus AS DOUBLE) / 1e6 END AS $dt_column
FROM __l ASOF LEFT JOIN __v ON __l.__key = __v.__key AND __l.__lus > __v.__lo
WHERE $keep OR $within
$order_by
