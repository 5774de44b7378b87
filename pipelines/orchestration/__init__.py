"""The Dagster wiring: assets, resources, partitions, schedules, the code location and the instance storage. The only package that imports Dagster."""
