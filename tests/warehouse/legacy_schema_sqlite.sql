-- The schema that okr-metrics created before warehouse migrations existed (schema_version 0),
-- dumped from SQLite: tests upgrade a warehouse made from it in place.
CREATE TABLE kr_scores (
	quarter VARCHAR(7) NOT NULL, 
	objective_id VARCHAR(200) NOT NULL, 
	kr_id VARCHAR(200) NOT NULL, 
	kr_title TEXT NOT NULL, 
	owner VARCHAR(200), 
	as_of DATE NOT NULL, 
	kr_type VARCHAR(20) NOT NULL, 
	value FLOAT, 
	start FLOAT, 
	target FLOAT, 
	progress FLOAT, 
	score FLOAT, 
	expected_progress FLOAT, 
	status VARCHAR(20) NOT NULL, 
	stale BOOLEAN NOT NULL, 
	last_observed DATE, 
	forecast_value FLOAT, 
	forecast_score FLOAT, 
	forecast_method VARCHAR(20), 
	definition_hash VARCHAR(64) NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	computed_at DATETIME NOT NULL, 
	CONSTRAINT kr_scores_pk PRIMARY KEY (quarter, kr_id, as_of)
);
CREATE INDEX kr_scores_objective ON kr_scores (quarter, objective_id, as_of);
CREATE INDEX kr_scores_as_of ON kr_scores (as_of);
CREATE TABLE objective_scores (
	quarter VARCHAR(7) NOT NULL, 
	objective_id VARCHAR(200) NOT NULL, 
	title TEXT NOT NULL, 
	owner VARCHAR(200), 
	aligns_to VARCHAR(200), 
	as_of DATE NOT NULL, 
	score FLOAT, 
	coverage FLOAT, 
	status VARCHAR(20) NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	computed_at DATETIME NOT NULL, 
	CONSTRAINT objective_scores_pk PRIMARY KEY (quarter, objective_id, as_of)
);
CREATE INDEX objective_scores_as_of ON objective_scores (as_of);
CREATE TABLE metric_observations (
	source VARCHAR(50) NOT NULL, 
	metric_key VARCHAR(1000) NOT NULL, 
	date DATE NOT NULL, 
	value FLOAT NOT NULL, 
	collected_at DATETIME NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	CONSTRAINT metric_observations_pk PRIMARY KEY (metric_key, date)
);
CREATE INDEX metric_observations_source_date ON metric_observations (source, date);
CREATE VIEW kr_scores_latest AS
SELECT k.*
FROM kr_scores AS k
JOIN (
    SELECT quarter, kr_id, MAX(as_of) AS as_of
    FROM kr_scores
    GROUP BY quarter, kr_id
) AS newest
  ON k.quarter = newest.quarter AND k.kr_id = newest.kr_id AND k.as_of = newest.as_of;
CREATE VIEW objective_scores_latest AS
SELECT o.*
FROM objective_scores AS o
JOIN (
    SELECT quarter, objective_id, MAX(as_of) AS as_of
    FROM objective_scores
    GROUP BY quarter, objective_id
) AS newest
  ON o.quarter = newest.quarter AND o.objective_id = newest.objective_id AND o.as_of = newest.as_of;
