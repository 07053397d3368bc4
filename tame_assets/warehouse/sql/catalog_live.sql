-- aurora_catalog_live: the batch catalog plus the live path's rows of the (station, UT day)s the batch
-- catalog does not have yet. For a day the batch catalog has, its rows win and the live rows of that
-- day are not shown (no frame twice). `source` says which table a row came from.
CREATE OR REPLACE VIEW aurora_catalog_live AS
WITH batch_days AS (
    SELECT DISTINCT station, CAST("time" AS DATE) AS day FROM aurora_catalog
)
SELECT *, 'batch' AS source FROM aurora_catalog
UNION ALL BY NAME
SELECT l.*, 'live' AS source
FROM live_frames AS l
WHERE NOT EXISTS (SELECT 1 FROM batch_days AS b WHERE b.station = l.station AND b.day = l.day);
