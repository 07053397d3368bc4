-- aurora_catalog_live before any batch catalog exists: the live path's rows (see catalog_live.sql).
CREATE OR REPLACE VIEW aurora_catalog_live AS
SELECT l.*, 'live' AS source FROM live_frames AS l;
