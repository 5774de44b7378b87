"""The pages' HTML, from the board's read model through the Jinja2 templates.

Shared by `dashboard.web` (the live pages) and `dashboard.report` (the mailable file):
both render the same overview, so the report carries the same data attributes. The
templates escape everything they are given (autoescape on); charts come from
`dashboard.charts` as markup the project drew itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from okr_metrics.pipelines.dashboard.board import (
    STATUS_LABELS,
    KeyResultCard,
    KeyResultPage,
    Overview,
    View,
)
from okr_metrics.pipelines.dashboard.charts import Series, history_chart, score_chart, trend_chart
from okr_metrics.pipelines.dashboard.formats import (
    format_number,
    format_score,
    format_share,
    grade,
    is_missing,
)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The templates (compiled once; the data is read afresh on every request)."""
    return Environment(
        loader=PackageLoader("okr_metrics.pipelines.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _stamp(moment: Any) -> str:
    """A UTC timestamp to the minute: 2026-12-02 00:11 UTC."""
    if not isinstance(moment, datetime):
        return "" if moment is None else str(moment)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def series_of(kr: KeyResultCard, view: View) -> Series:
    """What a KR's charts draw, as of the view's day."""
    assert view.quarter is not None and view.as_of is not None
    row = kr.row
    return Series(
        points=kr.trend,
        quarter=view.quarter,
        as_of=view.as_of,
        kr_type=row["kr_type"],
        start=row["start"],
        target=row["target"],
        forecast=row["forecast_value"],
        forecast_low=row.get("forecast_low"),
        forecast_high=row.get("forecast_high"),
        low=row.get("low"),
        high=row.get("high"),
        checkpoints=kr.checkpoints,
    )


class Links:
    """URLs of the live pages that keep the view's team, day and quarter."""

    def __init__(self, view: View):
        self.view = view

    def __call__(self, path: str, **changes: Any) -> str:
        query = self.view.query(**changes)
        return path + ("?" + urlencode(query) if query else "")

    def key_result(self, kr: KeyResultCard) -> str:
        quarter = kr.row["quarter"]
        params = self.view.query(quarter=None)
        path = f"/kr/{quote(str(quarter), safe='')}/{quote(str(kr.kr_id), safe='')}"
        return path + ("?" + urlencode(params) if params else "")


def _context(view: View, current: str, page_path: str, link: Callable[..., str], **extra: Any):
    def trend(kr: KeyResultCard) -> Markup:
        return trend_chart(
            series_of(kr, view),
            kr.grade,
            label=f"{kr.title}: the quarter so far and the forecast to its end",
        )

    context: dict[str, Any] = {
        "view": view,
        "current": current,
        "page_path": page_path,
        "link": link,
        "trend": trend,
        "number": format_number,
        "share": lambda value: "–" if is_missing(value) else format_share(value, 0),
        "score_text": format_score,
        "grade": grade,
        "stamp": _stamp,
        "labels": STATUS_LABELS,
        "static": False,
        "nonce": "",
        "written_at": "",
    }
    context.update(extra)
    return context


def render(template: str, context: Mapping[str, Any]) -> str:
    return environment().get_template(template).render(**context)


def overview_html(
    overview: Overview,
    nonce: str = "",
    static: bool = False,
    written_at: datetime | None = None,
) -> str:
    """The quarter overview. `static`: the report (no navigation, no form, in-page links)."""
    view = overview.view
    links = Links(view)
    kr_href: Callable[[KeyResultCard], str] = (
        (lambda kr: f"#kr-{quote(str(kr.kr_id), safe='')}") if static else links.key_result
    )
    return render(
        "overview.html",
        _context(
            view,
            "/",
            "/",
            links,
            overview=overview,
            kr_href=kr_href,
            nonce=nonce,
            static=static,
            written_at=_stamp(written_at or datetime.now(UTC)),
        ),
    )


def key_result_html(page: KeyResultPage, nonce: str = "") -> str:
    view, kr = page.view, page.kr
    assert view.quarter is not None and view.as_of is not None
    series = series_of(kr, view)
    links = Links(view)
    return render(
        "kr.html",
        _context(
            view,
            "/kr",
            f"/kr/{quote(str(view.quarter), safe='')}/{quote(str(kr.kr_id), safe='')}",
            links,
            kr=kr,
            page=page,
            history=history_chart(series, kr.fmt, label=f"{kr.title}: value over the quarter"),
            score=score_chart(
                [(day["as_of"], day["score"]) for day in page.days],
                view.quarter,
                view.as_of,
                paced=series.paced,
                label=f"{kr.title}: score over the quarter",
            ),
            nonce=nonce,
        ),
    )


def page_html(template: str, view: View, path: str, nonce: str = "", **extra: Any) -> str:
    """Any other page (weekly, alignment, quarters, login, a message)."""
    return render(template, _context(view, path, path, Links(view), nonce=nonce, **extra))
