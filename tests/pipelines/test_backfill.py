"""Backfills and history: no look-ahead, nightly runs equal one backfill, definition history."""

from __future__ import annotations

import shutil
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from okr_metrics.pipelines.cli.main import EXIT_OK, main, run_window
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
REPO_NAME = "acme/history"

DEFINITIONS = """\
quarter: 2026-Q4
objectives:
  - id: ship
    title: Ship steadily
    owner: eng
    key_results:
      - id: merged-prs
        title: Merged pull requests
        type: increase
        start: 0
        target: {target}
        metric: {{source: github, repo: acme/history, count: merged_pull_requests}}
      - id: bugs-opened
        title: Bugs opened a day, 7-day mean
        type: decrease
        start: 3
        target: 1
        metric: {{source: github, repo: acme/history, count: opened_issues, labels: [bug], aggregate: mean_7d}}
      - id: releases
        title: Releases, linear forecast
        type: increase
        start: 0
        target: 4
        metric: {{source: github, repo: acme/history, count: releases, aggregate: max}}
"""

# Columns that depend on what was computed, not on which run wrote the row.
COMPARED = [
    "quarter",
    "objective_id",
    "kr_id",
    "as_of",
    "value",
    "progress",
    "score",
    "expected_progress",
    "status",
    "stale",
    "last_observed",
    "forecast_value",
    "forecast_score",
    "forecast_method",
    "forecast_low",
    "forecast_high",
    "p_achieve",
    "definition_hash",
]


def timestamp(day: date, hour: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def history_data() -> dict:
    """Activity on most days of October 2026, so every day's numbers differ."""
    pulls, issues, releases = [], [], []
    for offset in range(31):
        day = date(2026, 10, 1) + timedelta(days=offset)
        for n in range(offset % 4):
            pulls.append({"created_at": timestamp(day, 1), "merged_at": timestamp(day, 2 + n)})
        if offset % 3 == 0:
            issues.append({"created_at": timestamp(day, 5), "labels": ["bug"]})
        if offset % 9 == 4:
            releases.append({"created_at": timestamp(day, 6), "published_at": timestamp(day, 7)})
    return {"pulls": pulls, "issues": issues, "releases": releases}


@pytest.fixture
def history(tmp_path, sandbox, monkeypatch):
    """Scratch definitions, Dagster home and a factory of scratch warehouses."""
    defs = tmp_path / "okr_defs"
    defs.mkdir()
    (defs / "2026-Q4.yaml").write_text(textwrap.dedent(DEFINITIONS.format(target=40)))
    sandbox.data.github.set_repo(REPO_NAME, **history_data())
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("OKR_DEFS", str(defs))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("GITHUB_API_URL", sandbox.url)
    monkeypatch.setenv("GITHUB_TOKEN", "history-token")

    def use_warehouse(name: str) -> Warehouse:
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
        monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
        return Warehouse(url)

    use_warehouse.defs = defs
    return use_warehouse


def table(warehouse: Warehouse) -> pd.DataFrame:
    frame = warehouse.read_kr_scores()[COMPARED]
    return frame.sort_values(["kr_id", "as_of"]).reset_index(drop=True)


def test_whole_quarter_backfill_twice_gives_identical_rows(history):
    warehouse = history("twice")
    assert main(["backfill", "--from", "2026-10-01", "--to", "2026-10-31"]) == EXIT_OK
    first = table(warehouse)
    assert main(["backfill", "--from", "2026-10-01", "--to", "2026-10-31"]) == EXIT_OK
    again = table(warehouse)
    assert len(first) == 3 * 31
    pd.testing.assert_frame_equal(first, again)


def test_no_look_ahead(history):
    """Day D of a long backfill equals day D of a backfill that stops at D."""
    long = history("long")
    run_window(date(2026, 10, 1), date(2026, 10, 31))
    short = history("short")
    run_window(date(2026, 10, 1), date(2026, 10, 12))
    long_rows, short_rows = table(long), table(short)
    for as_of in (date(2026, 10, 1), date(2026, 10, 7), date(2026, 10, 12)):
        pd.testing.assert_frame_equal(
            long_rows[long_rows["as_of"] == as_of].reset_index(drop=True),
            short_rows[short_rows["as_of"] == as_of].reset_index(drop=True),
        )
    # The short backfill really stopped: nothing after D was stored or scored.
    assert short_rows["as_of"].max() == date(2026, 10, 12)
    observed = short.read_observations(
        [
            "github:count=merged_pull_requests;repo=acme/history",
        ],
        date(2026, 10, 1),
        date(2026, 12, 31),
    )
    assert observed["date"].max() == date(2026, 10, 12)


def test_nightly_runs_equal_one_backfill(history):
    """A backfill to M then nightly runs for M+1..M+3 equals one backfill to M+3."""
    nightly = history("nightly")
    run_window(date(2026, 10, 1), date(2026, 10, 20))
    for as_of in (date(2026, 10, 21), date(2026, 10, 22), date(2026, 10, 23)):
        assert main(["run", "--date", as_of.isoformat()]) == EXIT_OK
    once = history("once")
    run_window(date(2026, 10, 1), date(2026, 10, 23))
    pd.testing.assert_frame_equal(table(nightly), table(once))
    nightly_objectives = nightly.read_objective_scores().drop(columns=["run_id", "computed_at"])
    once_objectives = once.read_objective_scores().drop(columns=["run_id", "computed_at"])
    pd.testing.assert_frame_equal(nightly_objectives, once_objectives)


def test_target_change_shows_in_history(history):
    warehouse = history("target")
    run_window(date(2026, 10, 1), date(2026, 10, 10))
    (history.defs / "2026-Q4.yaml").write_text(textwrap.dedent(DEFINITIONS.format(target=80)))
    assert main(["run", "--date", "2026-10-11", "--trailing-days", "1"]) == EXIT_OK
    rows = table(warehouse)
    merged = rows[rows["kr_id"] == "merged-prs"].set_index("as_of")
    before, after = merged.loc[date(2026, 10, 10)], merged.loc[date(2026, 10, 11)]
    assert before["definition_hash"] != after["definition_hash"]
    # 10-10 keeps the score it had with target 40; 10-11 is scored against 80.
    assert before["progress"] == pytest.approx(before["value"] / 40)
    assert after["progress"] == pytest.approx(after["value"] / 80)
    assert merged.loc[: date(2026, 10, 10), "definition_hash"].nunique() == 1
    # KRs whose definition did not change keep their hash.
    bugs = rows[rows["kr_id"] == "bugs-opened"]
    assert bugs["definition_hash"].nunique() == 1


def test_a_quarter_backfill_makes_a_few_requests_per_metric(history, sandbox):
    history("requests")
    run_window(date(2026, 10, 1), date(2026, 10, 31))
    # Three series, each one windowed query: one page each for a month of this repo.
    requests = [r for r in sandbox.requests if REPO_NAME in r[1]]
    assert len(requests) == 3


def test_range_across_two_quarters_uses_each_quarters_definitions(history, sandbox):
    warehouse = history("across")
    (history.defs / "2026-Q3.yaml").write_text(
        textwrap.dedent(DEFINITIONS.format(target=40))
        .replace("quarter: 2026-Q4", "quarter: 2026-Q3")
        .replace("id: merged-prs", "id: q3-merged-prs")
    )
    run_window(date(2026, 9, 29), date(2026, 10, 2))
    rows = table(warehouse)
    q3 = rows[rows["quarter"] == "2026-Q3"]
    q4 = rows[rows["quarter"] == "2026-Q4"]
    assert sorted(q3["as_of"].unique()) == [date(2026, 9, 29), date(2026, 9, 30)]
    assert sorted(q4["as_of"].unique()) == [date(2026, 10, 1), date(2026, 10, 2)]
    assert "q3-merged-prs" in set(q3["kr_id"]) and "q3-merged-prs" not in set(q4["kr_id"])
    # A series both quarters use is fetched once for the whole range.
    assert len([r for r in sandbox.requests if REPO_NAME in r[1]]) == 3


def test_a_metric_changed_mid_quarter_is_fetched_from_the_quarter_start(history, sandbox):
    """A new series is never scored as a partial sum of the nightly window."""
    warehouse = history("drift")
    run_window(date(2026, 10, 1), date(2026, 10, 10))
    sandbox.data.github.set_repo("acme/renamed", **history_data())
    defs = history.defs / "2026-Q4.yaml"
    defs.write_text(
        defs.read_text().replace(
            "repo: acme/history, count: merged", "repo: acme/renamed, count: merged"
        )
    )
    assert main(["run", "--date", "2026-10-11", "--trailing-days", "1"]) == EXIT_OK
    merged = table(warehouse)
    merged = merged[merged["kr_id"] == "merged-prs"].set_index("as_of")
    # Same activity in the renamed repo: the full sum to 10-11, not one day's worth.
    expected = sum(offset % 4 for offset in range(11))
    assert merged.loc[date(2026, 10, 11), "value"] == expected
    assert not merged.loc[date(2026, 10, 11), "stale"]


def test_a_series_last_quarter_fetched_is_still_new_to_this_one(history, sandbox):
    """Rows from the quarter before do not make a series known: the first nightly run of
    a quarter nobody backfilled fetches it from the quarter's first day."""
    warehouse = history("carried")
    (history.defs / "2026-Q3.yaml").write_text(
        textwrap.dedent(DEFINITIONS.format(target=40)).replace(
            "quarter: 2026-Q4", "quarter: 2026-Q3"
        )
    )
    run_window(date(2026, 9, 25), date(2026, 9, 30))
    assert main(["run", "--date", "2026-10-05", "--trailing-days", "1"]) == EXIT_OK
    merged = table(warehouse)
    merged = merged[(merged["kr_id"] == "merged-prs") & (merged["quarter"] == "2026-Q4")]
    # The quarter's sum to 10-05, not the one day the nightly window holds.
    assert merged.set_index("as_of").loc[date(2026, 10, 5), "value"] == sum(
        offset % 4 for offset in range(5)
    )
