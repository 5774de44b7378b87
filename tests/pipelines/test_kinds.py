"""The KR kinds of docs/scoring.md beyond increase/decrease/maintain/milestone, on small
hand-computed cases: maintain_between, baseline, phased targets (checkpoints),
commitment and running totals carried across quarters (reset_each_quarter: false).

The quarter is 2026-Q4: 1 Oct to 31 Dec, 92 days; `day(n)` is its n-th day.
"""

from __future__ import annotations

import logging
import math
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from okr_metrics.pipelines.cli.scorecard import render_scorecard
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.score import compute_kr_scores, compute_objective_scores
from okr_metrics.pipelines.scoring.rules import (
    KeyResultInput,
    ObjectiveInput,
    StatusThresholds,
    expected_path,
    kr_status,
    score_key_results,
    score_objectives,
    share_of_days_held,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.store import Warehouse

Q4 = Quarter(2026, 4)


def day(n: int) -> date:
    return Q4.start + timedelta(days=n - 1)


def daily(*values: float | None, first: int = 1) -> dict[date, float]:
    return {day(first + i): v for i, v in enumerate(values) if v is not None}


def key_result(**fields) -> KeyResultInput:
    defaults = dict(
        kr_id="kr",
        objective_id="obj",
        title="A key result",
        owner="growth",
        kr_type="increase",
        start=0.0,
        target=100.0,
        weight=1.0,
        aggregate="latest",
        metric_key="m",
        definition_hash="abc123",
    )
    defaults.update(fields)
    return KeyResultInput(**defaults)


def observations(series: dict[date, float], key: str = "m") -> pd.DataFrame:
    return pd.DataFrame(
        [(key, d, v) for d, v in series.items()], columns=["metric_key", "date", "value"]
    )


def rows(kr: KeyResultInput, series: dict[date, float], *as_of: date) -> list[dict]:
    return score_key_results([kr], Q4, observations(series), list(as_of)).to_dict("records")


def missing(number) -> bool:
    return number is None or (isinstance(number, float) and math.isnan(number))


BAND = dict(kr_type="maintain_between", start=None, target=None, low=10.0, high=20.0)


class TestMaintainBetween:
    def test_share_of_days_inside_the_band_bounds_included(self):
        # 10 (on low: held), 25 (out), 15 (in), no data, 9 (out), 20 (on high: held)
        series = daily(10, 25, 15, None, 9, 20)
        assert share_of_days_held(series, "maintain_between", None, Q4, day(3), 10, 20) == (
            pytest.approx(2 / 3)
        )
        row, last = rows(key_result(**BAND), series, day(3), day(6))
        assert (row["progress"], row["score"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
        assert last["score"] == pytest.approx(3 / 5)  # 10, 15, 20 of 5 days with data
        assert last["value"] == 20  # the aggregate (latest) is what the scorecard shows
        assert last["status"] == "off_track"  # 0.6 < 0.8
        assert (last["low"], last["high"]) == (10, 20)
        assert missing(last["target"]) and missing(last["start"])
        assert last["forecast_score"] == pytest.approx(0.6)  # maintain: the current score
        assert 0 < last["p_achieve"] < 1

    def test_status_thresholds_as_other_maintain_kinds(self):
        # 20 days inside, then 1 outside: 20 / 21 = 0.952
        series = daily(*([15] * 20), 30)
        (row,) = rows(key_result(**BAND), series, day(21))
        assert row["score"] == pytest.approx(20 / 21)
        assert row["status"] == "on_track"

    def test_a_point_band(self):
        (row,) = rows(key_result(**{**BAND, "low": 5.0, "high": 5.0}), daily(5, 5.5, 5), day(3))
        assert row["score"] == pytest.approx(2 / 3)


BASELINE = dict(kr_type="baseline", start=None, target=None, aggregate="sum")


class TestBaseline:
    def test_measured_and_forecast_never_scored(self):
        (row,) = rows(key_result(**BASELINE), daily(3, 5, 4), day(3))
        assert row["value"] == 12
        assert missing(row["progress"]) and missing(row["score"])
        assert row["status"] == "baseline"
        assert row["forecast_method"] == "run_rate"
        assert row["forecast_value"] == pytest.approx(368)  # 12 / 3 * 92
        assert row["forecast_low"] < 368 < row["forecast_high"]
        assert missing(row["forecast_score"]) and missing(row["p_achieve"])

    def test_no_data_is_still_no_data(self):
        (row,) = rows(key_result(**BASELINE), {}, day(3))
        assert row["status"] == "no_data"
        assert kr_status("baseline", 12.0, None, None, Q4, day(3)) == "baseline"

    def test_left_out_of_the_objective_score_and_coverage(self):
        krs = [
            key_result(kr_id="a", metric_key="a", start=0.0, target=100.0),
            key_result(kr_id="b", metric_key="b", weight=3.0, **BASELINE),
        ]
        frame = pd.concat([observations(daily(50), "a"), observations(daily(7), "b")])
        kr_rows = score_key_results(krs, Q4, frame, [day(1)])
        (objective,) = score_objectives(
            [ObjectiveInput("obj", "O", None, None)], krs, kr_rows
        ).to_dict("records")
        assert objective["score"] == pytest.approx(0.5)  # a alone, not (0.5 + 3 * ?) / 4
        assert objective["coverage"] == 1.0  # b's weight 3 counts neither way
        assert objective["status"] == "on_track"  # grace period; b's `baseline` is not a status

    def test_an_objective_of_baselines_only_has_no_data(self):
        krs = [key_result(kr_id="b", metric_key="b", **BASELINE)]
        kr_rows = score_key_results(krs, Q4, observations(daily(7), "b"), [day(1)])
        (objective,) = score_objectives(
            [ObjectiveInput("obj", "O", None, None)], krs, kr_rows
        ).to_dict("records")
        assert (objective["status"], objective["coverage"]) == ("no_data", 0.0)
        assert missing(objective["score"])


# increase 0 -> 100, 10 by 31 Oct (day 31), 40 by 30 Nov (day 61), 100 on 31 Dec (day 92)
PHASED = dict(checkpoints=((date(2026, 10, 31), 10.0), (date(2026, 11, 30), 40.0)))


class TestCheckpoints:
    def test_expected_progress_is_piecewise_linear_through_the_checkpoints(self):
        path = expected_path(Q4, 0.0, 100.0, PHASED["checkpoints"])
        assert path[15 - 1] == pytest.approx(15 / 31 * 0.1)  # 0.0484
        assert path[31 - 1] == pytest.approx(0.1)
        assert path[46 - 1] == pytest.approx(0.1 + 15 / 30 * 0.3)  # 15 Nov: 0.25
        assert path[61 - 1] == pytest.approx(0.4)
        assert path[76 - 1] == pytest.approx(0.4 + 15 / 31 * 0.6)  # 15 Dec: 0.6903
        assert path[92 - 1] == 1.0

    def test_without_checkpoints_the_straight_line(self):
        path = expected_path(Q4, 0.0, 100.0)
        assert path[46 - 1] == 0.5 and path[0] == 1 / 92

    def test_a_late_ramp_is_on_track_where_the_straight_line_says_off(self):
        series = daily(5, first=15)  # 5 on 15 Oct: progress 0.05
        (phased,) = rows(key_result(**PHASED), series, day(15))
        (straight,) = rows(key_result(), series, day(15))
        assert phased["expected_progress"] == pytest.approx(0.1 * 15 / 31)
        assert phased["status"] == "on_track"  # pace 0.05 / 0.0484 = 1.03
        assert straight["expected_progress"] == pytest.approx(15 / 92)
        assert straight["status"] == "off_track"  # pace 0.05 / 0.163 = 0.31

    def test_nothing_expected_before_a_launch(self):
        launch = dict(checkpoints=((date(2026, 10, 31), 0.0),))
        series = daily(*([0] * 32))
        on_31, on_32 = rows(key_result(**launch), series, day(31), day(32))
        assert on_31["expected_progress"] == 0.0
        assert on_31["status"] == "on_track"  # past the grace period, but nothing due yet
        assert on_32["expected_progress"] == pytest.approx(1 / 61)
        assert on_32["status"] == "off_track"  # pace 0

    def test_decrease_checkpoints_are_shares_of_the_way_down(self):
        # 20 -> 8, 17 by 15 Oct (day 15): a quarter of the way at day 15
        kr = key_result(start=20.0, target=8.0, checkpoints=((date(2026, 10, 15), 17.0),))
        (row,) = rows(kr, daily(17.5, first=10), day(10))
        assert row["expected_progress"] == pytest.approx(10 / 15 * 0.25)
        # progress (17.5 - 20) / (8 - 20) = 0.2083, pace 0.2083 / 0.1667 = 1.25
        assert row["status"] == "on_track"


class TestCommitment:
    @pytest.mark.parametrize(
        ("value", "aspirational", "committed"),
        [
            (50, "on_track", "on_track"),  # pace 1.0
            (40, "on_track", "at_risk"),  # pace 0.8
            (39, "on_track", "off_track"),  # pace 0.78
            (30, "at_risk", "off_track"),  # pace 0.6
            (20, "off_track", "off_track"),  # pace 0.4
        ],
    )
    def test_pace_thresholds_on_15_november(self, value, aspirational, committed):
        series = daily(value, first=46)  # expected_progress 0.5
        (loose,) = rows(key_result(), series, day(46))
        (firm,) = rows(key_result(commitment="committed"), series, day(46))
        assert (loose["status"], firm["status"]) == (aspirational, committed)
        assert (loose["commitment"], firm["commitment"]) == ("aspirational", "committed")
        assert loose["score"] == firm["score"] == value / 100  # the score itself is the same

    def test_the_file_thresholds_apply_to_aspirational_krs_only(self):
        strict = StatusThresholds(on_track=0.9, at_risk=0.6)
        # pace 0.35 / 0.5 = 0.7: on track by default, at risk by the file's 0.9 / 0.6,
        # off track when committed (1.0 / 0.8) whatever the file says
        assert kr_status("increase", 35.0, 0.35, 0.35, Q4, day(46)) == "on_track"
        assert kr_status("increase", 35.0, 0.35, 0.35, Q4, day(46), strict) == "at_risk"
        assert kr_status("increase", 35.0, 0.35, 0.35, Q4, day(46), strict, True) == "off_track"
        assert kr_status("increase", 50.0, 0.5, 0.5, Q4, day(46), strict, True) == "on_track"

    def test_a_committed_maintain_kr_holds_every_day(self):
        above = dict(kr_type="maintain_above", start=None, target=99.5)
        series = daily(*([100] * 19), 99)  # 19 of 20 held: 0.95
        (loose,) = rows(key_result(**above), series, day(20))
        (firm,) = rows(key_result(**above, commitment="committed"), series, day(20))
        (all_held,) = rows(key_result(**above, commitment="committed"), daily(100, 100), day(2))
        assert (loose["status"], firm["status"], all_held["status"]) == (
            "on_track",
            "at_risk",
            "on_track",
        )


def write_definitions(folder: Path, key_result_yaml: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "2026-Q4.yaml").write_text(
        "quarter: 2026-Q4\n"
        "objectives:\n"
        "  - id: launch\n"
        "    title: Launch\n"
        "    key_results:\n" + key_result_yaml,
        encoding="utf-8",
    )


RUNNING_TOTAL = """\
      - id: customers
        title: Customers from 100 to 500, all time
        type: increase
        start: 100
        target: 500
        reset_each_quarter: false
        metric: {source: github, repo: acme/app, count: releases}
"""


class TestRunningTotal:
    def test_the_stored_total_before_the_quarter_is_carried(self, tmp_path):
        write_definitions(tmp_path / "defs", RUNNING_TOTAL)
        definitions = load_definitions(tmp_path / "defs")
        okr_file = definitions.for_quarter(Q4)
        (key,) = okr_file.series_by_key()
        with Warehouse(f"sqlite:///{tmp_path / 'w.db'}") as warehouse:
            earlier = {date(2026, 6, 15): 100, date(2026, 9, 29): 10, date(2026, 9, 30): 5}
            series = pd.concat([observations(earlier, key), observations(daily(3, 5, 4), key)])
            warehouse.replace_observations(
                "github", series, [key], date(2026, 1, 1), day(3), "run-1"
            )
            compute_kr_scores(definitions, warehouse, day(3), day(3), "run-1")
            (row,) = warehouse.read_kr_scores(day(3), day(3)).to_dict("records")
        assert row["carried"] == 115  # 100 + 10 + 5, from Q2 and Q3
        assert row["value"] == 127  # 115 + 3 + 5 + 4
        assert row["progress"] == pytest.approx((127 - 100) / 400)
        # The quarter's own run rate, 12 / 3 * 92 = 368, on top of what was carried
        assert row["forecast_value"] == pytest.approx(115 + 368)
        assert row["forecast_score"] == pytest.approx((483 - 100) / 400)

    def test_nothing_stored_before_starts_from_zero_with_a_warning(self, tmp_path, caplog):
        write_definitions(tmp_path / "defs", RUNNING_TOTAL)
        definitions = load_definitions(tmp_path / "defs")
        (key,) = definitions.for_quarter(Q4).series_by_key()
        with Warehouse(f"sqlite:///{tmp_path / 'w.db'}") as warehouse:
            warehouse.replace_observations(
                "github", observations(daily(3, 5, 4), key), [key], day(1), day(3), "run-1"
            )
            with caplog.at_level(logging.WARNING, logger="okr_metrics"):
                compute_kr_scores(definitions, warehouse, day(3), day(3), "run-1")
            (row,) = warehouse.read_kr_scores(day(3), day(3)).to_dict("records")
        assert (row["carried"], row["value"]) == (0, 12)
        assert "customers: a running total with no stored observation before 2026-10-01" in (
            caplog.text
        )

    def test_a_quarter_that_resets_carries_nothing(self, tmp_path):
        write_definitions(
            tmp_path / "defs", RUNNING_TOTAL.replace("reset_each_quarter: false", "weight: 1")
        )
        definitions = load_definitions(tmp_path / "defs")
        (key,) = definitions.for_quarter(Q4).series_by_key()
        with Warehouse(f"sqlite:///{tmp_path / 'w.db'}") as warehouse:
            earlier = {date(2026, 9, 30): 5}
            series = pd.concat([observations(earlier, key), observations(daily(3), key)])
            warehouse.replace_observations(
                "github", series, [key], date(2026, 9, 1), day(1), "run-1"
            )
            compute_kr_scores(definitions, warehouse, day(1), day(1), "run-1")
            compute_objective_scores(definitions, warehouse, day(1), day(1), "run-1")
            (row,) = warehouse.read_kr_scores(day(1), day(1)).to_dict("records")
        assert row["value"] == 3 and missing(row["carried"])


class TestDefinitions:
    """The YAML of the kinds: what `okr lint` accepts and the file:line errors it gives."""

    def lint(self, tmp_path: Path, key_results: str) -> list[str]:
        write_definitions(tmp_path, key_results)
        problems = load_definitions(tmp_path).errors
        return [str(problem).removeprefix(f"{tmp_path}/") for problem in problems]

    def test_the_example_in_docs_scoring_loads(self, tmp_path):
        docs = (Path(__file__).resolve().parents[2] / "docs" / "scoring.md").read_text()
        example = docs.split("## Key result kinds", 1)[1].split("```yaml\n", 1)[1]
        example = example.split("```", 1)[0]
        indented = "".join(f"      {line}\n" for line in example.splitlines())
        assert self.lint(tmp_path, indented) == []
        okr_file = load_definitions(tmp_path).for_quarter(Q4)
        band, phased = (kr for _, kr in okr_file.key_results)
        assert (band.low, band.high) == (150, 300)
        assert phased.commitment == "committed"
        assert [c.target for c in phased.checkpoints] == [10, 45]

    @pytest.mark.parametrize(
        ("yaml", "problem"),
        [
            (
                "type: maintain_between\nlow: 5\nhigh: 3",
                "2026-Q4.yaml:6: objectives[launch].key_results[k]: `low` (5) is above `high` (3)",
            ),
            (
                "type: maintain_between\nlow: 5",
                "key_results[k]: `low` and `high` are both required for a maintain_between KR",
            ),
            (
                "type: maintain_above\ntarget: 1\nlow: 0",
                "`low` and `high` are for maintain_between KRs, not maintain_above",
            ),
            ("type: baseline\ntarget: 4", "a baseline KR is measured, not scored"),
            ("type: baseline\ncommitment: committed", "it cannot be committed"),
            (
                "type: increase\nstart: 0\ntarget: 1\ncommitment: firm",
                "key_results[k].commitment: Input should be 'aspirational' or 'committed'",
            ),
            (
                "type: milestone\ncheckpoints: [{date: 2026-11-01, target: 1}]",
                "`checkpoints` are for increase and decrease KRs, not milestone",
            ),
            (
                "type: increase\nstart: 0\ntarget: 1\nreset_each_quarter: false\n"
                "metric: {source: manual, aggregate: latest}",
                "reset_each_quarter: false carries a running total",
            ),
            (
                "type: increase\nstart: 0\ntarget: 1\nreset_each_quarter: false\n"
                "metric: {source: manual, aggregate: sum}",
                "check-ins belong to one quarter, so there is no earlier total to carry",
            ),
        ],
    )
    def test_errors_name_the_line_and_key(self, tmp_path, yaml, problem):
        lines = ["- id: k", "  title: K"] + [f"  {line}" for line in yaml.splitlines()]
        if "metric:" not in yaml:
            lines.append("  metric: {source: github, repo: a/b, count: releases}")
        problems = self.lint(tmp_path, "".join(f"      {line}\n" for line in lines))
        assert len(problems) == 1 and problem in problems[0], problems

    def test_checkpoint_errors_point_at_the_checkpoint(self, tmp_path):
        problems = self.lint(
            tmp_path,
            "      - id: k\n"
            "        title: K\n"
            "        type: increase\n"
            "        start: 0\n"
            "        target: 100\n"
            "        checkpoints:\n"
            "          - {date: 2026-11-01, target: 50}\n"
            "          - {date: 2026-10-15, target: 40}\n"
            "        metric: {source: github, repo: a/b, count: releases}\n",
        )
        assert problems == [
            "2026-Q4.yaml:13: objectives[launch].key_results[k].checkpoints[1].date: "
            "2026-10-15 is not after 2026-11-01",
            "2026-Q4.yaml:13: objectives[launch].key_results[k].checkpoints[1].target: "
            "40: checkpoint targets rise from `start` (0) to `target` (100), never back",
        ]
        outside = self.lint(
            tmp_path,
            "      - id: k\n"
            "        title: K\n"
            "        type: decrease\n"
            "        start: 10\n"
            "        target: 0\n"
            "        checkpoints: [{date: 2026-12-31, target: 1}]\n"
            "        metric: {source: github, repo: a/b, count: releases}\n",
        )
        assert outside == [
            "2026-Q4.yaml:11: objectives[launch].key_results[k].checkpoints[0].date: "
            "2026-12-31 is not inside 2026-Q4 before its last day (2026-10-01..2026-12-30)"
        ]

    def test_new_keys_at_their_default_keep_the_definition_hash(self, tmp_path):
        plain = "      - id: k\n        title: K\n        type: increase\n        start: 0\n"
        plain += "        target: 5\n        metric: {source: github, repo: a/b, count: releases}\n"
        write_definitions(tmp_path / "a", plain)
        explicit = plain.replace(
            "        target: 5\n",
            "        target: 5\n        commitment: aspirational\n        reset_each_quarter: true\n",
        )
        write_definitions(tmp_path / "b", explicit)
        committed = plain.replace(
            "        target: 5\n", "        target: 5\n        commitment: committed\n"
        )
        write_definitions(tmp_path / "c", committed)
        hashes = []
        for name in "abc":
            okr_file = load_definitions(tmp_path / name).for_quarter(Q4)
            ((_, kr),) = okr_file.key_results
            hashes.append(okr_file.definition_hash(kr))
        assert hashes[0] == hashes[1] != hashes[2]


class TestScorecard:
    def test_the_table_marks_each_kind(self, tmp_path):
        write_definitions(
            tmp_path / "defs",
            RUNNING_TOTAL.replace("type: increase", "type: increase\n        commitment: committed")
            + "      - id: band\n"
            "        title: Releases a day kept between 1 and 4\n"
            "        type: maintain_between\n"
            "        low: 1\n"
            "        high: 4\n"
            "        metric: {source: github, repo: acme/app, count: releases, aggregate: latest}\n"
            "      - id: measured\n"
            "        title: Releases, measured\n"
            "        type: baseline\n"
            "        metric: {source: github, repo: acme/app, count: releases}\n",
        )
        definitions = load_definitions(tmp_path / "defs")
        keys = list(definitions.for_quarter(Q4).series_by_key())
        with Warehouse(f"sqlite:///{tmp_path / 'w.db'}") as warehouse:
            series = pd.concat(
                [observations({date(2026, 9, 30): 5}, keys[0]), observations(daily(3), keys[0])]
            )
            warehouse.replace_observations(
                "github", series, keys, date(2026, 9, 30), day(1), "run-1"
            )
            compute_kr_scores(definitions, warehouse, day(1), day(1), "run-1")
            compute_objective_scores(definitions, warehouse, day(1), day(1), "run-1")
            table = render_scorecard(warehouse, "2026-Q4", day(1), order=["customers"])
        lines = {line.split()[0]: line for line in table.splitlines() if line.startswith("  ")}
        assert "committed" in lines["customers"].split("  ")[-1]
        assert "5 carried from earlier quarters" in lines["customers"]
        assert lines["band"].split()[1:5] == ["3", "1–4", "1.00", "on_track"]
        assert lines["measured"].split()[1:5] == ["3", "–", "-", "baseline"]
        assert "baseline — not scored" in lines["measured"]
        # The objective: customers (3 + 5 = 8 of 100 -> 500: progress -0.23, score 0) and the
        # band (score 1) at weight 1 each; the baseline counts for nothing.
        assert "[score 0.50, " in table
