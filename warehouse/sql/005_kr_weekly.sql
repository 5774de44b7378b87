-- Migration step 5: kr_weekly. Portable SQL but for one expression: {week_start} is the
-- Monday of as_of's week, written per dialect by warehouse/migrations.py.
-- Frozen: change the view in a new step (warehouse/migrations.py), never here.

-- One row per KR and ISO week (Monday to Sunday) of its quarter: the KR as it stood on the
-- week's last scored day, beside the week before's last scored day, for weekly check-ins.
-- value_change and score_change are null in the quarter's first week and where either
-- side has no data; status_changed and became_stale compare with the week before.
CREATE VIEW kr_weekly AS
SELECT
    this_week.quarter,
    this_week.kr_id,
    this_week.objective_id,
    this_week.kr_title,
    this_week.owner,
    this_week.week_start,
    this_week.as_of,
    this_week.value,
    previous_week.value AS previous_value,
    this_week.value - previous_week.value AS value_change,
    this_week.score,
    previous_week.score AS previous_score,
    this_week.score - previous_week.score AS score_change,
    this_week.status,
    previous_week.status AS previous_status,
    CASE
        WHEN previous_week.status IS NULL THEN 0
        WHEN previous_week.status <> this_week.status THEN 1
        ELSE 0
    END AS status_changed,
    this_week.stale,
    CASE
        WHEN this_week.stale AND (previous_week.stale IS NULL OR NOT previous_week.stale) THEN 1
        ELSE 0
    END AS became_stale,
    this_week.last_observed
FROM (
    SELECT k.*, weeks.week_start, weeks.week_number
    FROM kr_scores AS k
    JOIN (
        SELECT quarter, kr_id, {week_start} AS week_start, MAX(as_of) AS as_of,
               DENSE_RANK() OVER (PARTITION BY quarter, kr_id ORDER BY {week_start}) AS week_number
        FROM kr_scores
        GROUP BY quarter, kr_id, {week_start}
    ) AS weeks
      ON k.quarter = weeks.quarter AND k.kr_id = weeks.kr_id AND k.as_of = weeks.as_of
) AS this_week
LEFT JOIN (
    SELECT k.*, weeks.week_start, weeks.week_number
    FROM kr_scores AS k
    JOIN (
        SELECT quarter, kr_id, {week_start} AS week_start, MAX(as_of) AS as_of,
               DENSE_RANK() OVER (PARTITION BY quarter, kr_id ORDER BY {week_start}) AS week_number
        FROM kr_scores
        GROUP BY quarter, kr_id, {week_start}
    ) AS weeks
      ON k.quarter = weeks.quarter AND k.kr_id = weeks.kr_id AND k.as_of = weeks.as_of
) AS previous_week
  ON previous_week.quarter = this_week.quarter
 AND previous_week.kr_id = this_week.kr_id
 AND previous_week.week_number = this_week.week_number - 1;
