-- Migration step 1: the views analysts started with. Portable SQL: SQLite and PostgreSQL both run it.
-- Frozen: change a view in a new step (warehouse/migrations.py), never here.

-- Each KR's newest as-of row in each quarter.
CREATE VIEW kr_scores_latest AS
SELECT k.*
FROM kr_scores AS k
JOIN (
    SELECT quarter, kr_id, MAX(as_of) AS as_of
    FROM kr_scores
    GROUP BY quarter, kr_id
) AS newest
  ON k.quarter = newest.quarter AND k.kr_id = newest.kr_id AND k.as_of = newest.as_of;

-- Each objective's newest as-of row in each quarter.
CREATE VIEW objective_scores_latest AS
SELECT o.*
FROM objective_scores AS o
JOIN (
    SELECT quarter, objective_id, MAX(as_of) AS as_of
    FROM objective_scores
    GROUP BY quarter, objective_id
) AS newest
  ON o.quarter = newest.quarter AND o.objective_id = newest.objective_id AND o.as_of = newest.as_of;
