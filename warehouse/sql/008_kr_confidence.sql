-- Migration step 8: kr_confidence. Portable SQL: SQLite and PostgreSQL both run it.
-- Frozen: change the view in a new step (warehouse/migrations.py), never here.

-- One row per kr_scores row: the KR's status beside the newest confidence its owners
-- checked in on or before as_of (same quarter), and where the two disagree:
-- `doubtful` when the confidence is 3 or less while the numbers say on_track or achieved,
-- `hopeful` when it is 8 or more while they say off_track; null otherwise.
CREATE VIEW kr_confidence AS
SELECT
    k.quarter,
    k.objective_id,
    k.kr_id,
    k.kr_title,
    k.owner,
    k.as_of,
    k.status,
    k.score,
    c.date AS confidence_date,
    c.confidence,
    c.note AS confidence_note,
    CASE
        WHEN c.confidence <= 3 AND k.status IN ('on_track', 'achieved') THEN 'doubtful'
        WHEN c.confidence >= 8 AND k.status = 'off_track' THEN 'hopeful'
    END AS disagreement
FROM kr_scores AS k
LEFT JOIN checkins AS c
  ON c.quarter = k.quarter
 AND c.kr_id = k.kr_id
 AND c.date = (
    SELECT MAX(c2.date)
    FROM checkins AS c2
    WHERE c2.quarter = k.quarter
      AND c2.kr_id = k.kr_id
      AND c2.confidence IS NOT NULL
      AND c2.date <= k.as_of
 );
