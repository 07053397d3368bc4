-- Nearest-in-time match of every left row with a right row of the same key, in either direction.
--
-- Placeholders (filled by tame_assets.analysis.merge.asof_nearest_sql):
--   {left}        left relation (table, view or parenthesised query) with columns time, <left_key>
--   {right}       right relation with columns time, <right_key>, and the wanted columns
--   {left_key}    key column of the left relation (e.g. station)
--   {key_expr}    expression mapping the left key to the right key (e.g. CASE station WHEN 'NYA' THEN 'NAL' ... END)
--   {right_key}   key column of the right relation (e.g. station or site)
--   {right_cols}  right columns to carry, as "r.col AS alias, ..."
--   {tolerance_s} tolerance in seconds (inclusive)
--   {unmatched}   'TRUE' keeps unmatched left rows with NULLs; 'FALSE' drops them
--
-- Two ASOF LEFT JOINs (backward: latest right row at or before the left time; forward: earliest at
-- or after) and the closer one wins; on an exact tie the EARLIER right row wins (as pandas
-- merge_asof(direction="nearest")). The tolerance is applied after the joins (inside ON it would
-- turn the plan into a nested loop). dt_s = right time − left time in seconds.
WITH l AS (
    SELECT *, row_number() OVER () AS __row, {key_expr} AS __key FROM {left}
),
r AS (
    SELECT {right_key} AS __key, time AS __rtime, * EXCLUDE ({right_key}, time) FROM {right}
),
bw AS (
    SELECT l.__row, r.__rtime AS __t, r.* EXCLUDE (__key, __rtime)
    FROM l ASOF LEFT JOIN r ON l.__key = r.__key AND l.time >= r.__rtime
),
fw AS (
    SELECT l.__row, r.__rtime AS __t, r.* EXCLUDE (__key, __rtime)
    FROM l ASOF LEFT JOIN r ON l.__key = r.__key AND l.time <= r.__rtime
),
choice AS (
    SELECT l.__row,
           CASE
             WHEN bw.__t IS NULL AND fw.__t IS NULL THEN NULL
             WHEN fw.__t IS NULL THEN 'b'
             WHEN bw.__t IS NULL THEN 'f'
             WHEN epoch_us(l.time) - epoch_us(bw.__t) <= epoch_us(fw.__t) - epoch_us(l.time) THEN 'b'
             ELSE 'f'
           END AS __side
    FROM l JOIN bw USING (__row) JOIN fw USING (__row)
),
picked AS (
    SELECT c.__row, r.* EXCLUDE (__row)
    FROM choice c JOIN bw r ON c.__side = 'b' AND r.__row = c.__row
    UNION ALL
    SELECT c.__row, r.* EXCLUDE (__row)
    FROM choice c JOIN fw r ON c.__side = 'f' AND r.__row = c.__row
),
matched AS (
    SELECT p.*, (epoch_us(p.__t) - epoch_us(l.time)) / 1e6 AS dt_s
    FROM picked p JOIN l USING (__row)
    WHERE abs(epoch_us(p.__t) - epoch_us(l.time)) <= {tolerance_s} * 1e6
)
SELECT l.* EXCLUDE (__row, __key), {right_cols}, r.dt_s
FROM l LEFT JOIN matched r USING (__row)
WHERE {unmatched} OR r.__row IS NOT NULL
ORDER BY l.__row
