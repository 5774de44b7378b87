-- Run once by the postgres image on an empty data directory (deploy/compose.yaml): the
-- warehouse gets a database of its own beside Dagster's, owned by the same user.
CREATE DATABASE okr_warehouse;
