-- Archive coverage: per station and month (YYYY-MM of the frame's UTC time, not the partition's hive
-- column) the frames of the aurora catalog, UT days with frames, first and last frame (naive UTC),
-- frames with p_aurora (calibrated when present) >= $auroral_p, and frames whose ceilometer match saw
-- no cloud (no match: not counted).
SELECT
    station,
    frame_month AS month,
    count(*) AS frames,
    count(DISTINCT CAST(time AS DATE)) AS days,
    min(time) AS first_time,
    max(time) AS last_time,
    count(*) FILTER (WHERE coalesce(p_aurora_calibrated, p_aurora) >= $auroral_p) AS auroral_frames,
    count(*) FILTER (WHERE cloud_detected = false) AS cloud_free_frames
FROM (SELECT *, strftime(time, '%Y-%m') AS frame_month FROM aurora_catalog)
GROUP BY station, frame_month
ORDER BY station, frame_month
