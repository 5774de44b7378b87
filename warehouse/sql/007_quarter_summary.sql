-- Migration step 7: quarter_summary by commitment. Portable SQL: SQLite and PostgreSQL both run it.
-- Frozen: change the view in a new step (warehouse/migrations.py), never here.

-- One row per quarter and objective: how the quarter ended (or stands, for the current one),
-- from the objective's newest as-of day in the quarter and its KRs' rows of that same day.
-- Baseline KRs are measured, never scored: they are counted in baseline_krs only.
-- A row without a commitment (scored before step 7) is aspirational.
-- Success: an aspirational KR at score >= 0.7, a committed one at score 1.0; each kind's
-- share of successes is over its KRs with data (null when it has none).
-- "Were our goals too easy?": target_calibration is too_easy when at least half of the
-- aspirational KRs with data reached progress >= 1.0 (committed KRs are meant to), too_hard
-- when at least half of the scored KRs with data are below progress 0.4, else balanced;
-- null when no scored KR has data that day.
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
    END AS target_calibration,
    summary.committed_krs,
    summary.committed_success_share,
    summary.aspirational_krs,
    summary.aspirational_success_share,
    summary.baseline_krs
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
        COUNT(k.scored_id) AS krs,
        COUNT(k.scored_value) AS krs_with_data,
        CAST(
            AVG(CASE WHEN k.scored_value IS NULL THEN NULL WHEN k.score >= 0.7 THEN 1 ELSE 0 END)
            AS DOUBLE PRECISION
        ) AS share_at_or_above_0_7,
        AVG(CASE WHEN k.scored_value IS NULL THEN NULL ELSE k.progress END) AS mean_progress,
        AVG(
            CASE
                WHEN k.scored_value IS NULL OR k.kind <> 'aspirational' THEN NULL
                WHEN k.progress >= 1.0 THEN 1
                ELSE 0
            END
        ) AS share_reached,
        AVG(CASE WHEN k.scored_value IS NULL THEN NULL WHEN k.progress < 0.4 THEN 1 ELSE 0 END)
            AS share_below_0_4,
        SUM(CASE WHEN k.kind = 'committed' THEN 1 ELSE 0 END) AS committed_krs,
        CAST(
            AVG(
                CASE
                    WHEN k.scored_value IS NULL OR k.kind <> 'committed' THEN NULL
                    WHEN k.score >= 1.0 THEN 1
                    ELSE 0
                END
            ) AS DOUBLE PRECISION
        ) AS committed_success_share,
        SUM(CASE WHEN k.kind = 'aspirational' THEN 1 ELSE 0 END) AS aspirational_krs,
        CAST(
            AVG(
                CASE
                    WHEN k.scored_value IS NULL OR k.kind <> 'aspirational' THEN NULL
                    WHEN k.score >= 0.7 THEN 1
                    ELSE 0
                END
            ) AS DOUBLE PRECISION
        ) AS aspirational_success_share,
        SUM(CASE WHEN k.kind = 'baseline' THEN 1 ELSE 0 END) AS baseline_krs
    FROM objective_scores_latest AS o
    LEFT JOIN (
        SELECT
            quarter,
            objective_id,
            as_of,
            score,
            progress,
            CASE
                WHEN kr_type = 'baseline' THEN 'baseline'
                ELSE COALESCE(commitment, 'aspirational')
            END AS kind,
            CASE WHEN kr_type = 'baseline' THEN NULL ELSE kr_id END AS scored_id,
            CASE WHEN kr_type = 'baseline' THEN NULL ELSE value END AS scored_value
        FROM kr_scores
    ) AS k
      ON k.quarter = o.quarter AND k.objective_id = o.objective_id AND k.as_of = o.as_of
    GROUP BY o.quarter, o.objective_id, o.title, o.owner, o.as_of, o.score, o.status, o.coverage
) AS summary;
