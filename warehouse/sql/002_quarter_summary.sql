-- Migration step 2: quarter_summary. Portable SQL: SQLite and PostgreSQL both run it.
-- Frozen: change the view in a new step (warehouse/migrations.py), never here.

-- One row per quarter and objective: how the quarter ended (or stands, for the current one),
-- from the objective's newest as-of day in the quarter and its KRs' rows of that same day.
-- "Were our goals too easy?": target_calibration is too_easy when at least half of the KRs
-- with data reached progress >= 1.0, too_hard when at least half are below progress 0.4,
-- else balanced; null when no KR has data that day.
CREATE VIEW quarter_summary AS
SELECT
    summary.quarter,
    summary.objective_id,
    summary.title,
    summary.owner,
    summary.as_of,
    summary.final_score,
    summary.status,
    summary.coverage,
    summary.krs,
    summary.krs_with_data,
    summary.share_at_or_above_0_7,
    summary.mean_progress,
    CASE
        WHEN summary.krs_with_data = 0 THEN NULL
        WHEN summary.share_reached >= 0.5 THEN 'too_easy'
        WHEN summary.share_below_0_4 >= 0.5 THEN 'too_hard'
        ELSE 'balanced'
    END AS target_calibration
FROM (
    SELECT
        o.quarter,
        o.objective_id,
        o.title,
        o.owner,
        o.as_of,
        o.score AS final_score,
        o.status,
        o.coverage,
        COUNT(k.kr_id) AS krs,
        COUNT(k.value) AS krs_with_data,
        CAST(
            AVG(CASE WHEN k.value IS NULL THEN NULL WHEN k.score >= 0.7 THEN 1 ELSE 0 END)
            AS DOUBLE PRECISION
        ) AS share_at_or_above_0_7,
        AVG(CASE WHEN k.value IS NULL THEN NULL ELSE k.progress END) AS mean_progress,
        AVG(CASE WHEN k.value IS NULL THEN NULL WHEN k.progress >= 1.0 THEN 1 ELSE 0 END)
            AS share_reached,
        AVG(CASE WHEN k.value IS NULL THEN NULL WHEN k.progress < 0.4 THEN 1 ELSE 0 END)
            AS share_below_0_4
    FROM objective_scores_latest AS o
    LEFT JOIN kr_scores AS k
      ON k.quarter = o.quarter AND k.objective_id = o.objective_id AND k.as_of = o.as_of
    GROUP BY o.quarter, o.objective_id, o.title, o.owner, o.as_of, o.score, o.status, o.coverage
) AS summary;
