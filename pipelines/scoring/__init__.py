"""Scoring: pure functions over pandas frames that turn daily series into KR and objective scores."""
