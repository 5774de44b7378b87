"""`okr lint`'s coaching: warnings (exit 0) on definitions that run but measure badly."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from okr_metrics.pipelines.cli.main import EXIT_OK, main
from okr_metrics.pipelines.definitions import load_definitions

HEAD = "quarter: 2026-Q4\nobjectives:\n"


def objective(body: str, owner: str = "    owner: growth\n") -> str:
    return "  - id: growth\n    title: Grow\n" + owner + "    key_results:\n" + body


def kr(kr_id: str, title: str, kr_type: str, metric: str, extra: str = "") -> str:
    target = "" if kr_type == "milestone" else "        start: 0\n        target: 10\n"
    return (
        f"      - id: {kr_id}\n        title: {title}\n        type: {kr_type}\n"
        f"{target}{extra}        metric: {metric}\n"
    )


GITHUB = "{source: github, repo: acme/app, count: releases}"


def warnings_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "2026-Q4.yaml"
    path.write_text(text, encoding="utf-8")
    found = load_definitions(path)
    assert found.errors == [] and found.files  # warnings only: the quarter still runs
    return [str(problem).removeprefix(f"{path}:") for problem in found.warnings]


def test_a_shipping_milestone_is_a_task_not_an_outcome(tmp_path):
    text = HEAD + objective(
        kr("app-v2", "Ship the v2 app", "milestone", GITHUB)
        + kr("launch-count", "Launched features used by 10 teams", "increase", GITHUB)
        + kr("onboarding", "Completed onboarding", "milestone", GITHUB)
    )
    assert warnings_of(tmp_path, text) == [
        # Lines 1-6: the quarter and the objective; each KR: id, title, type[, start,
        # target], metric.
        "8: warning: objectives[growth].key_results[app-v2].title: 'Ship' with type milestone "
        "is a task, not an outcome; measure what it should change (users, revenue, time "
        "saved) as an increase or decrease KR, and keep the task in the plan",
        "18: warning: objectives[growth].key_results[onboarding].title: 'Completed' with type "
        "milestone is a task, not an outcome; measure what it should change (users, revenue, "
        "time saved) as an increase or decrease KR, and keep the task in the plan",
    ]


def ga(metric: str, aggregate: str | None) -> str:
    tail = f", aggregate: {aggregate}" if aggregate else ""
    return f'{{source: google_analytics, property: "1", metric: {metric}{tail}}}'


@pytest.mark.parametrize(
    ("metric", "aggregate", "advice"),
    [
        ("activeUsers", "sum",
         "aggregate: sum adds up activeUsers day by day, counting a person once for each day "
         "they came; use aggregate: latest or max (a day's users) or mean, or the GA4 metric "
         "active7DayUsers (weekly actives) or active28DayUsers (monthly actives) with "
         "aggregate: latest"),
        ("totalUsers", None,
         "the default aggregate, sum, adds up totalUsers day by day, counting a person once "
         "for each day they came; use aggregate: latest or max (a day's users) or mean, or the "
         "GA4 metric active7DayUsers (weekly actives) or active28DayUsers (monthly actives) "
         "with aggregate: latest"),
        ("active28DayUsers", "sum",
         "aggregate: sum adds up active28DayUsers, a rolling count of users that overlaps from "
         "one day to the next; use aggregate: latest (or max)"),
        ("averageSessionDuration", "sum",
         "aggregate: sum adds up averageSessionDuration, an average or rate per day, which "
         "means nothing summed; use aggregate: mean or mean_7d (or latest)"),
        ("bounceRate", "sum",
         "aggregate: sum adds up bounceRate, an average or rate per day, which means nothing "
         "summed; use aggregate: mean or mean_7d (or latest)"),
        ("engagementRate", None,
         "the default aggregate, sum, adds up engagementRate, an average or rate per day, "
         "which means nothing summed; use aggregate: mean or mean_7d (or latest)"),
    ],
)  # fmt: skip
def test_a_sum_of_days_that_do_not_add_up(tmp_path, metric, aggregate, advice):
    text = HEAD + objective(
        kr("users", "Users", "increase", ga(metric, aggregate))
        + kr("events", "Sign-ups", "increase", ga("eventCount", "sum"))
    )
    # The KR's metric is on line 12 (id on 7, then title, type, start, target).
    assert warnings_of(tmp_path, text) == [
        f"12: warning: objectives[growth].key_results[users].metric: {advice}"
    ]


def test_a_fitting_aggregate_raises_nothing(tmp_path):
    text = HEAD + objective(
        kr("users", "Daily users", "increase", ga("activeUsers", "latest"))
        + kr("weekly", "Weekly users", "increase", ga("active7DayUsers", "latest"))
        + kr("rate", "Engagement", "increase", ga("engagementRate", "mean_7d"))
    )
    assert warnings_of(tmp_path, text) == []


def test_the_warning_points_at_the_aggregate_key(tmp_path):
    metric = (
        "\n          source: google_analytics\n          property: '1'\n"
        "          metric: activeUsers\n          aggregate: sum"
    )
    text = HEAD + objective(
        kr("users", "Users", "increase", metric) + kr("b", "B", "increase", GITHUB)
    )
    (warning,) = warnings_of(tmp_path, text)
    assert warning.startswith("16: warning: objectives[growth].key_results[users].metric: ")
    assert text.splitlines()[15] == "          aggregate: sum"


def test_a_quarter_of_check_ins_only(tmp_path):
    manual = "{source: manual}"
    text = HEAD + objective(kr("a", "A", "increase", manual) + kr("b", "B", "increase", manual))
    assert warnings_of(tmp_path, text) == [
        "2: warning: objectives: every KR of 2026-Q4 is a manual check-in; measure at least "
        "one from a source that reports by itself (github, google_analytics, hubspot, jira, "
        "salesforce)"
    ]
    one_automatic = text.replace(manual, GITHUB, 1)
    assert warnings_of(tmp_path, one_automatic) == []


def test_an_objective_without_an_owner(tmp_path, capsys):
    text = HEAD + objective(kr("a", "A", "increase", GITHUB) + kr("b", "B", "increase", GITHUB), "")
    assert warnings_of(tmp_path, text) == [
        "3: warning: objectives[growth]: no owner; name the team accountable for it (owner: ...)"
    ]
    assert main(["lint", "--defs", str(tmp_path)]) == EXIT_OK
    assert "1 quarter valid, 0 error(s), 1 warning(s)" in capsys.readouterr().err


def test_coaching_in_a_team_file_names_that_file(tmp_path):
    folder = tmp_path / "2026-Q4"
    folder.mkdir()
    (folder / "_quarter.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    (folder / "a.yaml").write_text(
        "objectives:\n"
        + objective(kr("a", "A", "increase", GITHUB) + kr("b", "B", "increase", GITHUB)),
        encoding="utf-8",
    )
    (folder / "b.yaml").write_text(
        textwrap.dedent(
            """\
            # The web team's objective.
            objectives:
              - id: web
                title: Web
                key_results:
                  - {id: c, title: Launch the site, type: milestone, metric: {source: manual}}
                  - {id: d, title: D, type: increase, start: 0, target: 1, metric: {source: manual}}
            """
        ),
        encoding="utf-8",
    )
    assert [str(p) for p in load_definitions(tmp_path).warnings] == [
        f"{folder / 'b.yaml'}:3: warning: objectives[web]: no owner; name the team accountable "
        "for it (owner: ...)",
        f"{folder / 'b.yaml'}:6: warning: objectives[web].key_results[c].title: 'Launch' with "
        "type milestone is a task, not an outcome; measure what it should change (users, "
        "revenue, time saved) as an increase or decrease KR, and keep the task in the plan",
    ]
