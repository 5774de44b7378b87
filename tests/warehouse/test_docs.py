"""docs/warehouse.md stays true: every SQL example runs on SQLite and PostgreSQL and gives the
answer worked out by hand from the sample warehouse (tests/warehouse/conftest.py), and every
table, column and view is documented.

An example is a ```sql block right after `<!-- example: NAME -->`, or after
`<!-- example: NAME (sqlite) -->` / `(postgresql)` when the two databases need two spellings.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pytest import approx
from sqlalchemy import text

from okr_metrics.warehouse import schema

DOCS = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"
EXAMPLE = re.compile(
    r"<!-- example: (?P<name>[a-z0-9_]+)(?: \((?P<dialect>sqlite|postgresql)\))? -->\s*"
    r"```sql\n(?P<sql>.*?)```",
    re.DOTALL,
)


def examples() -> dict[str, dict[str, str]]:
    """name -> {dialect or "any": SQL}."""
    found: dict[str, dict[str, str]] = {}
    for match in EXAMPLE.finditer(DOCS.read_text(encoding="utf-8")):
        spellings = found.setdefault(match["name"], {})
        spellings[match["dialect"] or "any"] = match["sql"]
    return found


def plain(value):
    """One spelling for both databases: dates as ISO text, numbers as float or int."""
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    if isinstance(value, Decimal):
        return float(value)
    return value


def run(warehouse, name: str) -> list[dict]:
    spellings = examples()[name]
    dialect = warehouse.engine.dialect.name
    sql = spellings.get(dialect) or spellings["any"]
    with warehouse.engine.connect() as connection:
        result = connection.execute(text(sql))
        keys = list(result.keys())
        return [dict(zip(keys, map(plain, row), strict=True)) for row in result]


def column(rows: list[dict], name: str) -> list:
    return [row[name] for row in rows]


# -- the answers, worked out from the sample's table of paces -----------------------------
# Q4 is scored through 10-20, day 20 of 92: a KR's progress is pace * 20 / 92.
DAY_20 = 20 / 92


def check_scorecard_today(rows):
    assert column(rows, "kr_id") == [
        "activation",
        "signups",
        "p95-latency",
        "uptime",
        "first-response",
        "tickets-closed",
    ]
    assert set(column(rows, "as_of")) == {"2026-10-20"}
    stale = {row["kr_id"] for row in rows if row["stale"]}
    assert stale == {"first-response", "tickets-closed"}
    by_kr = {row["kr_id"]: row for row in rows}
    assert by_kr["signups"]["score"] == approx(1.38 * DAY_20)
    assert by_kr["signups"]["target"] == 1200
    assert by_kr["tickets-closed"]["status"] == "no_data"


def check_at_risk_this_week(rows):
    # Last 7 scored days: 10-14..10-20. first-response is stale from 10-15 at progress
    # 0.92 * 14 / 92, so its pace 0.92 * 14 / day drops under 0.7 on day 19.
    assert [(r["kr_id"], r["days_at_risk"], r["status_now"]) for r in rows] == [
        ("activation", 7, "at_risk"),
        ("p95-latency", 7, "off_track"),
        ("first-response", 2, "at_risk"),
    ]


def check_objective_trend(rows):
    assert len(rows) == 3 * 14  # days 1, 8, ..., 92 of Q3
    growth = [row for row in rows if row["objective_id"] == "grow-usage"]
    assert growth[0]["as_of"] == "2026-07-01" and growth[-1]["as_of"] == "2026-09-30"
    assert growth[0]["change_in_week"] is None
    day_1 = (1.2 + 1.05) / 2 / 92
    day_8 = (1.2 + 1.05) / 2 * 8 / 92
    assert growth[0]["score"] == approx(day_1)
    assert growth[1]["as_of"] == "2026-07-08"
    assert growth[1]["change_in_week"] == approx(day_8 - day_1)
    assert growth[-1]["score"] == approx(1.0)


def check_attainment_by_team(rows):
    got = [(r["team"], r["quarter"], r["krs"], r["krs_green"]) for r in rows]
    assert got == [
        ("growth", "2026-Q3", 2, 2),
        ("growth", "2026-Q4", 2, 0),
        ("platform", "2026-Q3", 2, 1),
        ("platform", "2026-Q4", 2, 1),
        ("support", "2026-Q3", 2, 1),
        ("support", "2026-Q4", 1, 0),  # tickets-closed has no data in Q4
    ]
    growth_q4 = (1.38 + 0.6) / 2 * DAY_20
    assert column(rows, "mean_score") == approx(
        [1.0, growth_q4, 0.6, (0.97 + 0.23 * DAY_20) / 2, 0.65, 0.92 * 14 / 92]
    )
    assert rows[0]["change"] is None
    assert rows[1]["change"] == approx(growth_q4 - 1.0)
    assert rows[5]["change"] == approx(0.92 * 14 / 92 - 0.65)


def check_stale_data(rows):
    assert [(r["kr_id"], r["last_observed"], r["days_without_data"]) for r in rows] == [
        ("first-response", "2026-10-14", 6),
        ("tickets-closed", None, None),
    ]


def check_forecast_vs_target(rows):
    assert [(r["kr_id"], r["outlook"]) for r in rows] == [
        ("p95-latency", "will miss"),
        ("activation", "will miss"),
        ("first-response", "close"),
        ("uptime", "close"),
        ("signups", "will reach the target"),
    ]
    by_kr = {row["kr_id"]: row for row in rows}
    assert by_kr["signups"]["forecast_value"] == approx(1.38 * 1200)
    assert by_kr["activation"]["forecast_value"] == approx(20 + 0.6 * 20)
    assert by_kr["signups"]["forecast_method"] == "run_rate"


def check_objectives_today(rows):
    assert [(r["objective_id"], r["status"], r["coverage"]) for r in rows] == [
        ("reliability", "off_track", 1.0),
        ("grow-usage", "at_risk", 1.0),
        ("support-speed", "at_risk", 0.5),
    ]
    assert column(rows, "score") == approx(
        [(0.97 + 0.23 * DAY_20) / 2, (1.38 + 0.6) / 2 * DAY_20, 0.92 * 14 / 92]
    )
    assert column(rows, "aligns_to") == [None, "company-growth", "company-growth"]


def check_status_mix_per_day(rows):
    assert len(rows) == 20
    statuses = ("achieved", "on_track", "at_risk", "off_track", "no_data")
    assert all(sum(row[status] for status in statuses) == 6 for row in rows)
    assert rows[0]["as_of"] == "2026-10-01"
    assert [rows[0][status] for status in statuses] == [0, 5, 0, 0, 1]  # grace period
    assert rows[-1]["as_of"] == "2026-10-20"
    assert [rows[-1][status] for status in statuses] == [0, 2, 2, 1, 1]


def check_were_goals_too_easy(rows):
    got = [(r["objective_id"], r["krs"], r["target_calibration"]) for r in rows]
    assert got == [
        ("grow-usage", 2, "too_easy"),
        ("reliability", 2, "too_hard"),
        ("support-speed", 2, "balanced"),
    ]
    assert column(rows, "final_score") == approx([1.0, 0.6, 0.65])
    assert column(rows, "share_at_or_above_0_7") == approx([1.0, 0.5, 0.5])
    assert column(rows, "mean_progress") == approx([1.125, 0.6, 0.65])


def check_parent_rollup(rows):
    assert [(r["quarter"], r["parent_objective"], r["objectives"]) for r in rows] == [
        ("2026-Q3", "company-growth", 2),
        ("2026-Q4", "company-growth", 2),
    ]
    growth_q4, support_q4 = (1.38 + 0.6) / 2 * DAY_20, 0.92 * 14 / 92
    assert column(rows, "mean_score") == approx([0.825, (growth_q4 + support_q4) / 2])
    assert column(rows, "lowest_score") == approx([0.65, support_q4])


def check_definition_changes(rows):
    assert [
        (r["kr_id"], r["definition_hash"], r["target"], r["first_day"], r["last_day"]) for r in rows
    ] == [
        ("signups", "signups-q4-v1", 1500, "2026-10-01", "2026-10-09"),
        ("signups", "signups-q4-v2", 1200, "2026-10-10", "2026-10-20"),
    ]


def check_biggest_movers(rows):
    # 10-20 against 10-13, seven scored days apart: a straight line moves pace * 7 / 92.
    assert column(rows, "kr_id") == [
        "signups",
        "activation",
        "p95-latency",
        "first-response",
        "uptime",
    ]
    assert column(rows, "change") == approx(
        [1.38 * 7 / 92, 0.6 * 7 / 92, 0.23 * 7 / 92, 0.92 * (14 - 13) / 92, 0.0]
    )


def check_source_freshness(rows):
    assert [(r["source"], r["series"], r["first_day"], r["newest_day"]) for r in rows] == [
        ("github", 1, "2026-07-01", "2026-10-20"),
        ("jira", 1, "2026-07-01", "2026-10-14"),
    ]


def check_weekly_checkin(rows):
    # Two weeks: Monday 10-12 to 10-18 (day 18) against the week before's day 11, and the
    # week of 10-19, scored to day 20, against day 18. A straight line moves pace * days /
    # 92 in score; the value by that times (target - start). first-response's source
    # fails from 10-15 (day 15): its value holds from day 14 on, so it turns stale in the
    # first week, and in the second its pace, 0.92 * 14 / 20 = 0.644, drops below 0.7.
    def moved(pace, days, span):
        return (pace * days / 92 * span, pace * days / 92)

    weeks = {
        "2026-10-18": {"days": 7, "first_response": (-20 * 0.92 * 3 / 92, 0.92 * 3 / 92)},
        "2026-10-20": {"days": 2, "first_response": (0.0, 0.0)},
    }
    expected = []
    for as_of, week in weeks.items():
        days = week["days"]
        expected += [
            ("growth", "activation", as_of, *moved(0.6, days, 20), "at_risk", "at_risk", 0, 0),
            ("growth", "signups", as_of, *moved(1.38, days, 1200), "on_track", "on_track", 0, 0),
            ("platform", "p95-latency", as_of, *moved(0.23, days, -400), "off_track", "off_track")
            + (0, 0),
            ("platform", "uptime", as_of, 0.0, 0.0, "on_track", "on_track", 0, 0),
            ("support", "first-response", as_of, *week["first_response"])
            + (("on_track", "on_track", 0, 1) if days == 7 else ("on_track", "at_risk", 1, 0)),
            ("support", "tickets-closed", as_of, None, None, "no_data", "no_data", 0, 0),
        ]
    names = [
        "team", "kr_id", "as_of", "value_change", "score_change",
        "previous_status", "status", "status_changed", "became_stale",
    ]  # fmt: skip
    assert [tuple(row[name] for name in names) for row in rows] == [
        tuple(approx(cell) if isinstance(cell, float) else cell for cell in row) for row in expected
    ]


def check_alerts_and_delivery(rows):
    assert [tuple(row.values()) for row in rows] == [
        ("2026-10-09", "activation", "growth", "status_changed", "on_track", "at_risk",
         "delivered", 1, None),
        ("2026-10-09", "p95-latency", "platform", "status_changed", "on_track", "off_track",
         "retrying", 1, "gave up after 1 attempts on POST ***: last server error (HTTP 503)"),
        ("2026-10-20", "first-response", "support", "status_changed", "on_track", "at_risk",
         "recorded only", 0, None),
    ]  # fmt: skip


def check_final_grades(rows):
    # Q3's last day is day 92 of 92: each KR's score is its pace, capped at 1.
    got = [(r["kr_id"], r["computed_grade"], r["override_grade"], r["grade"]) for r in rows]
    assert got == [
        ("activation", approx(1.0), None, approx(1.0)),
        ("signups", approx(1.0), None, approx(1.0)),
        ("uptime", approx(0.9), None, approx(0.9)),
        ("first-response", approx(0.8), None, approx(0.8)),
        ("p95-latency", approx(0.3), 0.5, 0.5),
        ("tickets-closed", approx(0.5), None, approx(0.5)),
    ]
    assert rows[4]["graded_by"] == "platform-lead"


def check_confidence_disagrees(rows):
    # On 10-20 signups is on_track (pace 1.38) and p95-latency off_track (pace 0.23);
    # activation's 6 is no disagreement.
    assert [(r["kr_id"], r["status"], r["confidence"], r["confidence_date"], r["disagreement"])
            for r in rows] == [
        ("p95-latency", "off_track", 8, "2026-10-18", "hopeful"),
        ("signups", "on_track", 3, "2026-10-16", "doubtful"),
    ]  # fmt: skip


def check_committed_and_aspirational(rows):
    got = [
        (
            r["objective_id"],
            r["committed_krs"],
            r["committed_success_share"],
            r["aspirational_krs"],
            r["aspirational_success_share"],
        )
        for r in rows
    ]
    # Q3's final scores: grow-usage 1 and 1; reliability uptime 0.9 (aspirational, a
    # success) and p95-latency 0.3 (committed, a miss); support-speed 0.8 and 0.5.
    assert got == [
        ("grow-usage", 0, None, 2, approx(1.0)),
        ("reliability", 1, approx(0.0), 1, approx(1.0)),
        ("support-speed", 0, None, 2, approx(0.5)),
    ]


CHECKS = {
    name.removeprefix("check_"): function
    for name, function in globals().items()
    if name.startswith("check_")
}


def test_every_example_has_a_check_and_each_database_a_spelling():
    found = examples()
    assert len(found) >= 12
    assert set(found) == set(CHECKS)
    for name, spellings in found.items():
        assert "any" in spellings or {"sqlite", "postgresql"} <= set(spellings), name


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_gives_the_answer(sample_warehouse, name):
    CHECKS[name](run(sample_warehouse, name))


def test_every_table_column_and_view_is_documented():
    docs = DOCS.read_text(encoding="utf-8")
    for table in schema.metadata.sorted_tables:
        section = re.split(r"\n##+ ", docs.split(f"### `{table.name}`", 1)[1], maxsplit=1)[0]
        first_cells = re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \|", section, re.MULTILINE)
        names = {name for cell in first_cells for name in re.findall(r"`([a-z_]+)`", cell)}
        assert names == {column.name for column in table.columns}, table.name
    for view in schema.VIEW_NAMES:
        assert f"| `{view}` |" in docs, view
