"""The ground floor: quarters and the words every layer shares (KR types, aggregates, series kinds, statuses). Imports nothing of the project's."""
