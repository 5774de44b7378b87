-- The schema that okr-metrics created before warehouse migrations existed (schema_version 0),
-- dumped from PostgreSQL 15 (pg_dump --schema-only, schema prefix removed): tests upgrade a
-- warehouse made from it in place.

CREATE TABLE kr_scores (
    quarter character varying(7) NOT NULL,
    objective_id character varying(200) NOT NULL,
    kr_id character varying(200) NOT NULL,
    kr_title text NOT NULL,
    owner character varying(200),
    as_of date NOT NULL,
    kr_type character varying(20) NOT NULL,
    value double precision,
    start double precision,
    target double precision,
    progress double precision,
    score double precision,
    expected_progress double precision,
    status character varying(20) NOT NULL,
    stale boolean NOT NULL,
    last_observed date,
    forecast_value double precision,
    forecast_score double precision,
    forecast_method character varying(20),
    definition_hash character varying(64) NOT NULL,
    run_id character varying(64) NOT NULL,
    computed_at timestamp with time zone NOT NULL
);

COMMENT ON TABLE kr_scores IS 'One row per key result per as-of day.';

COMMENT ON COLUMN kr_scores.quarter IS 'e.g. 2026-Q4';

COMMENT ON COLUMN kr_scores.owner IS 'team owning the KR (falls back to the objective owner)';

COMMENT ON COLUMN kr_scores.as_of IS 'the day the score is computed as of';

COMMENT ON COLUMN kr_scores.value IS 'the KR''s aggregate value as of as_of; null when no data';

COMMENT ON COLUMN kr_scores.progress IS '(value - start) / (target - start), uncapped';

COMMENT ON COLUMN kr_scores.score IS 'progress clamped to 0..1';

COMMENT ON COLUMN kr_scores.expected_progress IS 'days elapsed / days in the quarter';

COMMENT ON COLUMN kr_scores.stale IS 'the source failed or was skipped for as_of';

COMMENT ON COLUMN kr_scores.last_observed IS 'date of the newest real observation';

COMMENT ON COLUMN kr_scores.run_id IS 'the Dagster run that wrote the row';

CREATE VIEW kr_scores_latest AS
 SELECT k.quarter,
    k.objective_id,
    k.kr_id,
    k.kr_title,
    k.owner,
    k.as_of,
    k.kr_type,
    k.value,
    k.start,
    k.target,
    k.progress,
    k.score,
    k.expected_progress,
    k.status,
    k.stale,
    k.last_observed,
    k.forecast_value,
    k.forecast_score,
    k.forecast_method,
    k.definition_hash,
    k.run_id,
    k.computed_at
   FROM (kr_scores k
     JOIN ( SELECT kr_scores.quarter,
            kr_scores.kr_id,
            max(kr_scores.as_of) AS as_of
           FROM kr_scores
          GROUP BY kr_scores.quarter, kr_scores.kr_id) newest ON ((((k.quarter)::text = (newest.quarter)::text) AND ((k.kr_id)::text = (newest.kr_id)::text) AND (k.as_of = newest.as_of))));

CREATE TABLE metric_observations (
    source character varying(50) NOT NULL,
    metric_key character varying(1000) NOT NULL,
    date date NOT NULL,
    value double precision NOT NULL,
    collected_at timestamp with time zone NOT NULL,
    run_id character varying(64) NOT NULL
);

COMMENT ON TABLE metric_observations IS 'The validated daily series behind every KR.';

COMMENT ON COLUMN metric_observations.metric_key IS 'the query, e.g. github:count=releases;repo=acme/app';

CREATE TABLE objective_scores (
    quarter character varying(7) NOT NULL,
    objective_id character varying(200) NOT NULL,
    title text NOT NULL,
    owner character varying(200),
    aligns_to character varying(200),
    as_of date NOT NULL,
    score double precision,
    coverage double precision,
    status character varying(20) NOT NULL,
    run_id character varying(64) NOT NULL,
    computed_at timestamp with time zone NOT NULL
);

COMMENT ON TABLE objective_scores IS 'One row per objective per as-of day.';

COMMENT ON COLUMN objective_scores.score IS 'weight-averaged score of the KRs with data';

COMMENT ON COLUMN objective_scores.coverage IS 'weight share of the KRs with data';

CREATE VIEW objective_scores_latest AS
 SELECT o.quarter,
    o.objective_id,
    o.title,
    o.owner,
    o.aligns_to,
    o.as_of,
    o.score,
    o.coverage,
    o.status,
    o.run_id,
    o.computed_at
   FROM (objective_scores o
     JOIN ( SELECT objective_scores.quarter,
            objective_scores.objective_id,
            max(objective_scores.as_of) AS as_of
           FROM objective_scores
          GROUP BY objective_scores.quarter, objective_scores.objective_id) newest ON ((((o.quarter)::text = (newest.quarter)::text) AND ((o.objective_id)::text = (newest.objective_id)::text) AND (o.as_of = newest.as_of))));

ALTER TABLE ONLY kr_scores
    ADD CONSTRAINT kr_scores_pk PRIMARY KEY (quarter, kr_id, as_of);

ALTER TABLE ONLY metric_observations
    ADD CONSTRAINT metric_observations_pk PRIMARY KEY (metric_key, date);

ALTER TABLE ONLY objective_scores
    ADD CONSTRAINT objective_scores_pk PRIMARY KEY (quarter, objective_id, as_of);

CREATE INDEX kr_scores_as_of ON kr_scores USING btree (as_of);

CREATE INDEX kr_scores_objective ON kr_scores USING btree (quarter, objective_id, as_of);

CREATE INDEX metric_observations_source_date ON metric_observations USING btree (source, date);

CREATE INDEX objective_scores_as_of ON objective_scores USING btree (as_of);

