"""The jobs that collect and score, in plain Python: what the Dagster assets call."""
