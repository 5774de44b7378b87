"""The "needs attention" list: KRs whose chance to achieve dropped most this week, on the
overview, the report and the scorecard, from rows written by hand."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from okr_metrics.pipelines.cli.scorecard import render_scorecard
from okr_metrics.pipelines.dashboard import board, pages
from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS, OBJECTIVE_SCORE_COLUMNS
from okr_metrics.warehouse.store import Warehouse

DAYS = [date(2026, 10, 1), date(2026, 10, 8), date(2026, 10, 15)]
# p_achieve on 10-01, 10-08 and 10-15. As of 10-15, "the week before" is 10-08:
# falls fell 0.5, slips 0.1; rises rose; unknown has none; steady did not move;
# flat fell 0.003, less than a shown percentage point's half (0.1% -> 0.1%: no news).
P_ACHIEVE = {
    "falls": (0.9, 0.8, 0.3),
    "slips": (0.7, 0.6, 0.5),
    "rises": (0.1, 0.2, 0.9),
    "unknown": (None, None, None),
    "steady": (0.4, 0.4, 0.4),
    "flat": (0.004, 0.004, 0.001),
}


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    rows, objectives = [], []
    for as_of in DAYS:
        for kr_id, chances in P_ACHIEVE.items():
            row = dict.fromkeys(KR_SCORE_COLUMNS)
            row.update(
                quarter="2026-Q4",
                objective_id="grow",
                kr_id=kr_id,
                kr_title=f"KR {kr_id}",
                owner="team-a" if kr_id != "slips" else "team-b",
                as_of=as_of,
                kr_type="increase",
                value=10.0,
                start=0.0,
                target=100.0,
                progress=0.1,
                score=0.1,
                expected_progress=0.2,
                status="at_risk",
                stale=False,
                definition_hash=kr_id,
                p_achieve=chances[DAYS.index(as_of)],
            )
            rows.append(row)
        objective = dict.fromkeys(OBJECTIVE_SCORE_COLUMNS)
        objective.update(
            quarter="2026-Q4",
            objective_id="grow",
            title="Grow",
            owner="team-a",
            as_of=as_of,
            score=0.1,
            coverage=1.0,
            status="at_risk",
        )
        objectives.append(objective)
    frame = pd.DataFrame(rows, columns=KR_SCORE_COLUMNS)
    warehouse.replace_kr_scores(frame, DAYS[0], DAYS[-1], "r")
    warehouse.replace_objective_scores(
        pd.DataFrame(objectives, columns=OBJECTIVE_SCORE_COLUMNS), DAYS[0], DAYS[-1], "r"
    )
    return warehouse


def test_the_biggest_drops_since_the_week_before_largest_first(warehouse):
    with warehouse.engine.connect() as connection:
        found = board.needs_attention(connection, "2026-Q4", date(2026, 10, 15))
        assert [(item.kr_id, item.before_as_of, item.before, item.now) for item in found] == [
            ("falls", date(2026, 10, 8), 0.8, 0.3),
            ("slips", date(2026, 10, 8), 0.6, 0.5),
        ]
        # As of 10-08 the week before is 10-01: only falls and slips dropped (by 0.1).
        earlier = board.needs_attention(connection, "2026-Q4", date(2026, 10, 8))
        assert [item.kr_id for item in earlier] == ["falls", "slips"]
        # Nothing a week before the first day: no list.
        assert board.needs_attention(connection, "2026-Q4", date(2026, 10, 1)) == []
        assert len(board.needs_attention(connection, "2026-Q4", date(2026, 10, 15), limit=1)) == 1


def test_the_overview_and_the_report_list_them_and_a_team_sees_its_own(warehouse):
    with warehouse.engine.connect() as connection:
        view = board.resolve_view(connection, quarter=None, as_of=date(2026, 10, 15), team=None)
        html = pages.overview_html(board.load_overview(connection, view))
        static = pages.overview_html(board.load_overview(connection, view), static=True)
        team_view = board.resolve_view(
            connection, quarter=None, as_of=date(2026, 10, 15), team="team-b"
        )
        team_html = pages.overview_html(board.load_overview(connection, team_view))
    for page in (html, static):
        assert re.findall(r'data-attention-kr="([a-z-]+)"', page) == ["falls", "slips"]
        assert "80% → 30%" in page and "60% → 50%" in page
    assert 'href="#kr-falls"' in static
    assert re.findall(r'data-attention-kr="([a-z-]+)"', team_html) == ["slips"]


def test_the_scorecard_ends_with_them_and_shows_each_chance(warehouse):
    text = render_scorecard(warehouse, "2026-Q4", date(2026, 10, 15))
    assert "Needs attention (chance to achieve, since 2026-10-08):" in text
    footer = text.split("Needs attention", 1)[1].split("Sources", 1)[0]
    assert re.findall(r"^  (\S+) +(.+)$", footer, re.MULTILINE) == [
        ("falls", "80% → 30%"),
        ("slips", "60% → 50%"),
    ]
    assert re.search(r"^  falls .* p\(achieve\) 30%$", text, re.MULTILINE)
