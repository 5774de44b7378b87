"""The `okr` command and the scorecard it prints."""
