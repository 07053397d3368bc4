-- aurora_catalog_live before any batch catalog exists: the live path's rows (see catalog_live.sql), with
-- the batch catalog's novelty column (NULL: the live path computes no embedding) so queries of it work.
CREATE OR REPLACE VIEW aurora_catalog_live AS
SELECT l.*, 'live' AS source FROM live_frames AS l
UNION ALL BY NAME
SELECT CAST(NULL AS DOUBLE) AS novelty WHERE false;
