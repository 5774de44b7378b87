"""The quarter overview as one self-contained HTML file, to mail or attach (`okr report`).

The same page as the dashboard's overview, with the same data attributes, but with
nothing to fetch: inline CSS and SVG, no script, no link to a stylesheet, font or image,
and each KR's link pointing at its own row. Called by `okr report` and by the Dagster
asset that writes the report after each run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from okr_metrics.pipelines.dashboard import board, pages
from okr_metrics.warehouse.store import Warehouse

DEFAULT_FOLDER = Path(".okr") / "reports"


class ReportError(ValueError):
    """Nothing to report (no scores for the quarter or day asked for): one line."""


def report_html(
    warehouse: Warehouse,
    quarter: str | None = None,
    as_of: date | None = None,
    order: Sequence[str] = (),
    team: str | None = None,
) -> tuple[board.View, str]:
    """The report's view (which quarter and day it shows) and its HTML."""
    warehouse.ensure_schema()
    with warehouse.engine.connect() as connection:
        view = board.resolve_view(connection, quarter=quarter, as_of=as_of, team=team)
        if view.quarter is None or view.as_of is None:
            where = f" in {view.quarter}" if view.quarter else " in the warehouse"
            when = f" on or before {as_of}" if as_of else ""
            raise ReportError(f"no scores{where}{when}; run `okr run` or `okr backfill` first")
        overview = board.load_overview(connection, view, order)
    return view, pages.overview_html(overview, static=True, written_at=datetime.now(UTC))


def default_path(quarter: str) -> Path:
    return DEFAULT_FOLDER / f"{quarter}.html"


def write_report(
    warehouse: Warehouse,
    quarter: str | None = None,
    as_of: date | None = None,
    path: str | os.PathLike[str] | None = None,
    order: Sequence[str] = (),
) -> Path:
    """Write the overview of `quarter` as of `as_of` (defaults: the newest scored day) to
    `path` (default `.okr/reports/<quarter>.html`), replacing it whole; returns the path.

    Raises `ReportError` when nothing is scored for that quarter or day.
    """
    view, html = report_html(warehouse, quarter, as_of, order)
    target = Path(path) if path is not None else default_path(str(view.quarter))
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside it and renamed: a reader never sees half a report.
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, target)
    return target
