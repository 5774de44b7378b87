"""Validation of daily series with Great Expectations, before anything is stored or scored."""
