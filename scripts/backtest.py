"""Backtest of the forecast: replay past quarters day by day and grade `p_achieve` and the
80% interval against how each quarter really ended, beside the naive baselines.

Not a test: it prints figures (docs/forecasting.md quotes them). For each key result and
each prediction day (the quarter's 15th, 30th, 45th, 60th and 75th), the KR is scored
from the observations dated that day or earlier only, exactly as the nightly run would
have scored it then; the outcome is its row on the quarter's last day.

    .venv/bin/python scripts/backtest.py                  # the sandbox's sample history
    .venv/bin/python scripts/backtest.py --warehouse sqlite:///.okr/warehouse.db --defs okr_defs

Without --warehouse (or OKR_WAREHOUSE_URL), the sample history is used: the sandbox's
deterministic data from 2025-01-01 to 2026-09-30, with the sample KRs of okr_defs/
(2026-Q4's, and 2026-Q3's that 2026-Q4 does not have) plus a few maintain KRs on the
same series (`EXTRA_KEY_RESULTS`), moved to every quarter from 2025-Q2 to 2026-Q3.
Each quarter's targets are planned from the quarter before it, at three stretches
(`STRETCHES`), as a team planning from last quarter's result would; manual check-ins
are generated weekly (`checkin_history`). The series are fetched from the sandbox over
HTTP by the real connectors, validated and stored in a scratch warehouse, then replayed
from there.

With --warehouse, every quarter of the definitions (--defs or OKR_DEFS) that has ended
is replayed from the observations stored in that warehouse, with its KRs as defined.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.registry import connected_sources
from okr_metrics.connectors.sandbox import Sandbox, SandboxData
from okr_metrics.pipelines.definitions import Definitions
from okr_metrics.pipelines.definitions.loader import load_definitions
from okr_metrics.pipelines.jobs.collect import collect_source
from okr_metrics.pipelines.jobs.score import scoring_inputs, status_thresholds
from okr_metrics.pipelines.scoring.rules import (
    MAINTAIN_ON_TRACK,
    KeyResultInput,
    StatusThresholds,
    score_key_results,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter, quarters_between
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[1]
PREDICTION_DAYS = (15, 30, 45, 60, 75)
# The sample history: the sandbox as it stood at the start of 2026-Q4.
HORIZON = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
FIRST_QUARTER, LAST_QUARTER = Quarter(2025, 1), Quarter(2026, 3)  # the first only plans
TEMPLATE_FILES = ("2026-Q4.yaml", "2026-Q3.yaml")
# How far each quarter's target reaches, relative to the quarter before (see `plan`).
STRETCHES = (0.5, 1.0, 1.5)
# maintain_above: the target is this quantile of last quarter's daily values (below:
# 1 minus it), so holding 95% of the days is in doubt.
MAINTAIN_QUANTILES = (0.02, 0.05, 0.1)
# The logistic baseline: p = 1 / (1 + exp(-(pace - 1) / PACE_LOGISTIC_WIDTH)). Fixed
# beforehand (pace 0.8 -> 0.12, 1.2 -> 0.88), not fitted to these outcomes.
PACE_LOGISTIC_WIDTH = 0.1
BINS = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])

# Maintain KRs on the sample series, beside the sample KRs (which have two, on check-ins).
EXTRA_KEY_RESULTS = [
    {
        "id": "support-tickets-per-day",
        "title": "Support tickets opened a day kept under the bar",
        "type": "maintain_below",
        "target": 1,
        "metric": {
            "source": "jira",
            "jql": 'project = SUP AND issuetype = "Support Ticket"',
            "count": "created",
            "aggregate": "mean_7d",
        },
    },
    {
        "id": "session-length-floor",
        "title": "Average session length kept above the bar",
        "type": "maintain_above",
        "target": 1,
        "metric": {
            "source": "google_analytics",
            "property": "123456789",
            "metric": "averageSessionDuration",
            "filter": {"platform": ["iOS", "Android"]},
            "aggregate": "mean_7d",
        },
    },
    {
        "id": "onboarding-floor",
        "title": "Daily onboarding completion kept above the bar",
        "type": "maintain_above",
        "target": 0.5,
        "metric": {
            "ratio": {
                "numerator": {
                    "source": "google_analytics",
                    "property": "123456789",
                    "metric": "eventCount",
                    "filter": {"eventName": ["onboarding_complete"]},
                },
                "denominator": {
                    "source": "google_analytics",
                    "property": "123456789",
                    "metric": "eventCount",
                    "filter": {"eventName": ["onboarding_start"]},
                },
            },
            "aggregate": "mean_7d",
        },
    },
    {
        "id": "dau-floor",
        "title": "Mobile daily active users kept above the bar",
        "type": "maintain_above",
        "target": 1,
        "metric": {
            "source": "google_analytics",
            "property": "123456789",
            "metric": "activeUsers",
            "filter": {"platform": ["iOS", "Android"]},
            "aggregate": "latest",
        },
    },
    {
        "id": "peak-dau",
        "title": "Peak mobile daily active users",
        "type": "increase",
        "start": 0,
        "target": 1,
        "metric": {
            "source": "google_analytics",
            "property": "123456789",
            "metric": "activeUsers",
            "filter": {"platform": ["iOS", "Android"]},
            "aggregate": "max",
        },
    },
]


# ---------------------------------------------------------------------------
# The sample history


def templates() -> list[dict]:
    """The sample KRs (2026-Q4's, then 2026-Q3's it lacks) and `EXTRA_KEY_RESULTS`."""
    found: dict[str, dict] = {}
    for name in TEMPLATE_FILES:
        document = yaml.safe_load((REPO / "okr_defs" / name).read_text())
        for objective in document["objectives"]:
            for key_result in objective["key_results"]:
                found.setdefault(key_result["id"], key_result)
    for key_result in EXTRA_KEY_RESULTS:
        found.setdefault(key_result["id"], key_result)
    return list(found.values())


def placeholder(key_result: dict) -> dict:
    """The KR with a stand-in target: collecting its series does not depend on it."""
    kept = {key: key_result[key] for key in ("id", "title", "type", "metric")}
    if key_result["type"] == "increase":
        kept |= {"start": 0, "target": 1}
    elif key_result["type"] == "decrease":
        kept |= {"start": 1, "target": 0}
    elif key_result["type"] != "milestone":
        kept["target"] = key_result["target"]
    return kept


def write_definitions(folder: Path, quarters: Sequence[Quarter]) -> None:
    """One definitions file per quarter, every template KR in it; check-ins beside them."""
    key_results = [placeholder(kr) for kr in templates()]
    (folder / "checkins").mkdir(parents=True)
    history = checkin_history(quarters[0].start, quarters[-1].end)
    for quarter in quarters:
        document = {
            "quarter": str(quarter),
            "timezone": "UTC",
            "objectives": [
                {
                    "id": f"backtest-{index}",
                    "title": f"Backtest key results, part {index + 1}",
                    "owner": "backtest",
                    "key_results": key_results[index * 4 : index * 4 + 4],
                }
                for index in range(math.ceil(len(key_results) / 4))
            ],
        }
        (folder / f"{quarter}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        rows = history[(history["date"] >= quarter.start) & (history["date"] <= quarter.end)]
        rows.to_csv(folder / "checkins" / f"{quarter}.csv", index=False)


def checkin_history(first: date, last: date) -> pd.DataFrame:
    """Weekly check-ins (Mondays, and each quarter's first day) of the sample's manual KRs.

    time-to-first-value: hours, drifting down about 1 a week; enterprise-adoption: a
    share rising from 5% by about 0.4 points a week; smb-churn: about 4.8% with noise;
    uptime: the week's lowest day, usually 99.95% or better.
    """
    rng = random.Random("backtest:checkins")
    rows = []
    hours, adoption = 80.0, 0.05
    day = first
    while day <= last:
        if day.weekday() == 0 or (day.day == 1 and day.month in (1, 4, 7, 10)):
            hours = max(10.0, hours - 1.0 + rng.gauss(0, 1.5))
            adoption = min(0.6, max(0.0, adoption + 0.004 + rng.gauss(0, 0.006)))
            churn = max(0.0, 0.048 + rng.gauss(0, 0.004))
            uptime = min(1.0, 1.0 - rng.expovariate(1 / 0.0002))
            for kr_id, value in (
                ("time-to-first-value", round(hours, 1)),
                ("enterprise-adoption", round(adoption, 4)),
                ("smb-churn", round(churn, 4)),
                ("uptime", round(uptime, 5)),
            ):
                rows.append({"kr_id": kr_id, "date": day, "value": value, "note": ""})
        day += timedelta(days=1)
    return pd.DataFrame(rows, columns=["kr_id", "date", "value", "note"])


def collect_sample_history(
    folder: Path, progress: Callable[[str], None]
) -> tuple[Definitions, Warehouse]:
    """Fetch every series of the generated definitions from the sandbox into a scratch warehouse."""
    quarters = quarters_between(FIRST_QUARTER.start, LAST_QUARTER.end)
    defs_folder = folder / "okr_defs"
    write_definitions(defs_folder, quarters)
    definitions = load_definitions(defs_folder)
    errors = definitions.errors
    if errors:
        raise SystemExit(f"backtest: the generated definitions have errors: {errors[0]}")
    warehouse = Warehouse(f"sqlite:///{folder / 'warehouse.db'}")
    warehouse.ensure_schema()
    with Sandbox(data=SandboxData(now=HORIZON)) as sandbox:
        settings = SourceSettings(
            base_url=sandbox.url, token="backtest-token", user="backtest@example.com"
        )
        for name, source in sorted(connected_sources().items()):
            connector = source.connector_class().from_settings(settings)
            result = collect_source(
                name,
                connector,
                None,
                definitions,
                FIRST_QUARTER.start,
                LAST_QUARTER.end,
                warehouse,
                run_id="backtest",
                progress=lambda line: None,
            )
            state, why = result.status()
            progress(f"  {name}: {result.rows} observations, {state}{f' ({why})' if why else ''}")
    return definitions, warehouse


# ---------------------------------------------------------------------------
# Planning each quarter from the one before


def daily_values(key_result: KeyResultInput, observations: pd.DataFrame) -> pd.Series:
    """The KR's daily values by date (a ratio: numerator over denominator, denominator > 0)."""
    by_key = {
        key: frame.set_index("date")["value"] for key, frame in observations.groupby("metric_key")
    }
    if key_result.is_ratio:
        numerator = by_key.get(key_result.numerator_key, pd.Series(dtype=float))
        denominator = by_key.get(key_result.denominator_key, pd.Series(dtype=float))
        ratio = (numerator / denominator.where(denominator > 0)).dropna()
        return ratio
    return by_key.get(key_result.metric_key, pd.Series(dtype=float)).dropna()


def plan(
    key_result: KeyResultInput, previous: KeyResultInput, scores: pd.DataFrame, daily: pd.Series
) -> list[KeyResultInput]:
    """Three versions of the KR, their start and target set from last quarter's result.

    Sums start at 0 and aim at last quarter's total times 0.9, 1 and 1.1 (the stretch
    scaled to a tenth); a level starts at last quarter's final value and aims
    `stretch` times last quarter's move further (at least half its daily spread);
    a maintain KR's bar is a low (high) quantile of last quarter's daily values.
    """
    rows = scores[scores["kr_id"] == previous.kr_id].sort_values("as_of")
    values = rows["value"].dropna()
    if values.empty or daily.empty:
        return []
    final, first_week = float(values.iloc[-1]), float(values.iloc[min(6, len(values) - 1)])
    planned = []
    for index, stretch in enumerate(STRETCHES):
        kr_id = f"{key_result.kr_id}@{index + 1}"
        if key_result.kr_type in ("maintain_above", "maintain_below"):
            quantile = MAINTAIN_QUANTILES[index]
            bar = daily.quantile(
                quantile if key_result.kr_type == "maintain_above" else 1 - quantile
            )
            planned.append(replace(key_result, kr_id=kr_id, target=float(bar)))
            continue
        if key_result.aggregate == "sum" and not key_result.is_ratio:
            goal = max(1.0, round(final * (1 + (stretch - 1) / 5)))
            if key_result.kr_type == "milestone":
                planned.append(replace(key_result, kr_id=kr_id, target=goal))
            else:
                planned.append(replace(key_result, kr_id=kr_id, start=0.0, target=goal))
            continue
        move = max(abs(final - first_week), float(daily.std()) / 2, 1e-6)
        sign = 1.0 if key_result.kr_type != "decrease" else -1.0
        planned.append(
            replace(key_result, kr_id=kr_id, start=final, target=final + sign * stretch * move)
        )
    return planned


def sample_quarters(
    definitions: Definitions, warehouse: Warehouse
) -> Iterable[tuple[Quarter, list[KeyResultInput], StatusThresholds, pd.DataFrame]]:
    """Each backtested quarter's planned KRs and its observations."""
    quarters = quarters_between(FIRST_QUARTER.start, LAST_QUARTER.end)
    for previous_quarter, quarter in zip(quarters, quarters[1:], strict=False):
        _, previous_krs = scoring_inputs(definitions.files[previous_quarter])
        _, krs = scoring_inputs(definitions.files[quarter])
        previous_observations = read_observations(warehouse, previous_krs, previous_quarter)
        previous_scores = score_key_results(
            previous_krs,
            previous_quarter,
            previous_observations,
            [previous_quarter.start + timedelta(days=i) for i in range(previous_quarter.days)],
        )
        planned = []
        for key_result, previous in zip(krs, previous_krs, strict=True):
            daily = daily_values(previous, previous_observations)
            planned += plan(key_result, previous, previous_scores, daily)
        yield quarter, planned, StatusThresholds(), read_observations(warehouse, krs, quarter)


def stored_quarters(
    definitions: Definitions, warehouse: Warehouse, today: date
) -> Iterable[tuple[Quarter, list[KeyResultInput], StatusThresholds, pd.DataFrame]]:
    """Each quarter of the definitions that has ended, with its KRs as defined."""
    for quarter, okr_file in sorted(definitions.files.items()):
        if quarter.end >= today:
            continue
        _, krs = scoring_inputs(okr_file)
        yield quarter, krs, status_thresholds(okr_file), read_observations(warehouse, krs, quarter)


def read_observations(
    warehouse: Warehouse, key_results: Sequence[KeyResultInput], quarter: Quarter
) -> pd.DataFrame:
    keys = sorted({key for kr in key_results for key in kr.series_keys})
    return warehouse.read_observations(keys, quarter.start, quarter.end)


# ---------------------------------------------------------------------------
# Replay and grading


@dataclass(frozen=True)
class Prediction:
    quarter: str
    kr_id: str
    kind: str  # the aggregate kind, for the breakdown
    day: int
    p_achieve: float
    pace_hard: float
    pace_logistic: float
    point: float
    covered: bool
    achieved: bool


def kind_of(key_result: KeyResultInput) -> str:
    if key_result.kr_type in ("maintain_above", "maintain_below"):
        return "maintain"
    if key_result.kr_type == "milestone":
        return "milestone"
    aggregate = f"ratio {key_result.aggregate}" if key_result.is_ratio else key_result.aggregate
    return f"{aggregate} ({key_result.kr_type})"


def replay(
    quarter: Quarter,
    key_results: list[KeyResultInput],
    thresholds: StatusThresholds,
    observations: pd.DataFrame,
) -> list[Prediction]:
    """Score each prediction day from the observations up to it; grade against the last day."""
    final = score_key_results(key_results, quarter, observations, [quarter.end], thresholds)
    final = final.set_index("kr_id")
    by_id = {kr.kr_id: kr for kr in key_results}
    predictions = []
    for day_number in PREDICTION_DAYS:
        as_of = quarter.start + timedelta(days=day_number - 1)
        # Only what the nightly run of that day had: no look-ahead.
        known = observations[pd.to_datetime(observations["date"]).dt.date <= as_of]
        rows = score_key_results(key_results, quarter, known, [as_of], thresholds)
        for row in rows.itertuples(index=False):
            outcome = final.loc[row.kr_id]
            if pd.isna(row.p_achieve) or pd.isna(outcome["value"]):
                continue
            key_result = by_id[row.kr_id]
            maintain = key_result.kr_type in ("maintain_above", "maintain_below")
            achieved = (
                outcome["score"] >= MAINTAIN_ON_TRACK
                if maintain
                else outcome["status"] == "achieved"
            )
            pace = straight_line_pace(key_result, row.value, row.score, row.expected_progress)
            point = (
                float(row.score >= MAINTAIN_ON_TRACK)
                if maintain
                else float(reaches_target(key_result, row.forecast_value))
            )
            predictions.append(
                Prediction(
                    str(quarter),
                    row.kr_id,
                    kind_of(key_result),
                    day_number,
                    float(row.p_achieve),
                    float(pace >= 1),
                    1 / (1 + math.exp(-(pace - 1) / PACE_LOGISTIC_WIDTH)),
                    point,
                    bool(row.forecast_low <= outcome["value"] <= row.forecast_high),
                    bool(achieved),
                )
            )
    return predictions


def straight_line_pace(
    key_result: KeyResultInput, value: float, score: float, expected: float
) -> float:
    """Progress over expected progress, as Profit.co or UpRaise draw it: 1 is on pace.

    Maintain KRs: the share of days held over the share needed (0.95).
    """
    if key_result.kr_type in ("maintain_above", "maintain_below"):
        return score / MAINTAIN_ON_TRACK
    start = key_result.start if key_result.start is not None else 0.0
    progress = (value - start) / (key_result.target - start)
    return progress / expected


def reaches_target(key_result: KeyResultInput, forecast_value: float) -> bool:
    if pd.isna(forecast_value):
        return False
    if key_result.kr_type == "decrease":
        return forecast_value <= key_result.target
    return forecast_value >= key_result.target


METHODS = {
    "p_achieve": "p_achieve",
    "pace_hard": "straight-line pace, 1 if pace >= 1 else 0",
    "pace_logistic": f"straight-line pace, logistic (width {PACE_LOGISTIC_WIDTH})",
    "point": "today's point forecast reaches the target, 1 or 0",
}


def brier(frame: pd.DataFrame, column: str) -> float:
    return float(((frame[column] - frame["achieved"].astype(float)) ** 2).mean())


def report(predictions: list[Prediction], title: str, out: Callable[[str], None]) -> None:
    frame = pd.DataFrame([p.__dict__ for p in predictions])
    if frame.empty:
        out(f"{title}: no predictions (no quarter with data has ended)")
        return
    quarters = sorted(frame["quarter"].unique())
    out(f"\n== {title} ==")
    out(
        f"{frame['kr_id'].nunique()} KRs over {len(quarters)} quarters "
        f"({quarters[0]}..{quarters[-1]}), {len(frame)} predictions, "
        f"{frame.groupby(['quarter', 'kr_id'])['achieved'].first().mean():.0%} of KR-quarters achieved"
    )

    out("\nBrier score (lower is better; 0.25 is always saying 0.5), by prediction day")
    header = f"{'':<48}" + "".join(f"{f'day {d}':>9}" for d in PREDICTION_DAYS) + f"{'all':>9}"
    out(header)
    for column, label in METHODS.items():
        cells = [brier(frame[frame["day"] == d], column) for d in PREDICTION_DAYS]
        out(f"{label:<48}" + "".join(f"{c:>9.3f}" for c in cells) + f"{brier(frame, column):>9.3f}")
    counts = [int((frame["day"] == d).sum()) for d in PREDICTION_DAYS]
    out(f"{'predictions':<48}" + "".join(f"{c:>9}" for c in counts) + f"{len(frame):>9}")
    skill = 1 - brier(frame, "p_achieve") / brier(frame, "pace_hard")
    out(f"Brier skill of p_achieve over the straight-line pace (0/1): {skill:+.0%}")

    out("\nCoverage of the 80% interval (share of quarter-end values inside it)")
    out(
        f"{'forecast_low..forecast_high':<48}"
        + "".join(f"{frame[frame['day'] == d]['covered'].mean():>9.0%}" for d in PREDICTION_DAYS)
        + f"{frame['covered'].mean():>9.0%}"
    )

    for column, label in METHODS.items():
        out(f"\nReliability: {label} (all days)")
        out(f"{'predicted':<12}{'n':>6}{'mean predicted':>16}{'share achieved':>16}")
        bins = np.clip(np.digitize(frame[column], BINS[1:-1]), 0, len(BINS) - 2)
        for index in range(len(BINS) - 1):
            chosen = frame[bins == index]
            if chosen.empty:
                continue
            span = f"{BINS[index]:.1f}-{BINS[index + 1]:.1f}"
            out(
                f"{span:<12}{len(chosen):>6}{chosen[column].mean():>16.2f}"
                f"{chosen['achieved'].mean():>16.2f}"
            )

    out("\nBy kind of KR (all days): Brier of p_achieve vs the straight-line pace (0/1), coverage")
    out(
        f"{'kind':<34}{'n':>6}{'p_achieve':>11}{'pace 0/1':>10}{'pace logit':>12}{'point':>8}{'cover':>8}"
    )
    for kind, chosen in sorted(frame.groupby("kind")):
        out(
            f"{kind:<34}{len(chosen):>6}{brier(chosen, 'p_achieve'):>11.3f}"
            f"{brier(chosen, 'pace_hard'):>10.3f}{brier(chosen, 'pace_logistic'):>12.3f}"
            f"{brier(chosen, 'point'):>8.3f}{chosen['covered'].mean():>8.0%}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--warehouse",
        default=os.environ.get("OKR_WAREHOUSE_URL"),
        help="replay this warehouse's stored observations (default: OKR_WAREHOUSE_URL; "
        "unset: the sandbox's sample history)",
    )
    parser.add_argument(
        "--defs",
        default=os.environ.get("OKR_DEFS", "okr_defs"),
        help="definitions of the warehouse's quarters (default: OKR_DEFS or okr_defs)",
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    predictions: list[Prediction] = []
    if args.warehouse:
        definitions = load_definitions(args.defs)
        if definitions.errors:
            print(f"backtest: {definitions.errors[0]}", file=sys.stderr)
            return 2
        warehouse = Warehouse(args.warehouse)
        for quarter, krs, thresholds, observations in stored_quarters(
            definitions, warehouse, datetime.now(UTC).date()
        ):
            predictions += replay(quarter, krs, thresholds, observations)
        title = f"stored observations, definitions {args.defs}"
    else:
        print("Fetching the sample history from the sandbox (2025-01-01..2026-09-30)...")
        with tempfile.TemporaryDirectory(prefix="okr-backtest-") as folder:
            definitions, warehouse = collect_sample_history(Path(folder), print)
            for quarter, krs, thresholds, observations in sample_quarters(definitions, warehouse):
                predictions += replay(quarter, krs, thresholds, observations)
            warehouse.close()
        title = "the sandbox's sample history, 2025-Q2..2026-Q3"
    report(predictions, title, print)
    print(f"\n({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
