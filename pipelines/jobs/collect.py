"""Collect sources' daily series for a date window, validate them and store them.

Plain Python, called by the Dagster observation assets: it works out which series the
definitions need in the window (each shared query once; a series new to the warehouse
from its quarter's first day), asks each source's connector for all of them over the
whole window (`daily_series_many`: the connector merges them into the fewest queries,
never one per day), several sources at once on threads of their own (`collect_sources`),
validates every fetched series in one Great Expectations batch (`pipelines/validation`),
quarantines the rows that fail in `rejected_observations`, and replaces the window's
valid days in `metric_observations`. A metric that fails is reported and leaves its
stored rows alone; the other metrics go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING

from okr_metrics.connectors.base import Connector, SeriesRequest, SourceError, Window
from okr_metrics.connectors.params import Expectations, MetricParams
from okr_metrics.pipelines.definitions import Definitions, OkrFile, Problem
from okr_metrics.pipelines.validation.expectations import (
    DeclaredExpectation,
    SeriesToValidate,
    ValidationReport,
    prepare_in_background,
    validate_many,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter, quarters_between
from okr_metrics.warehouse.store import SeriesWindow, Warehouse

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("okr_metrics")


@dataclass(frozen=True)
class PlannedSeries(SeriesRequest[MetricParams]):
    """One series to fetch: the connector's request (its key, its query, the days the
    definitions need, who reads it), and the expectations its rows must meet."""

    # Every `expect` block the KRs reading this series declare; all of them apply.
    expectations: tuple[Expectations, ...] = ()

    def starting(self, day: date) -> PlannedSeries:
        """The same series, fetched from `day`."""
        return replace(self, window=Window(day, self.end, self.timezone))


@dataclass
class CollectResult:
    source: str
    requested: int = 0
    rows: int = 0
    skipped: str | None = None
    failures: dict[str, str] = field(default_factory=dict)  # metric_key -> one-line reason
    validations: dict[str, ValidationReport] = field(default_factory=dict)
    refused_rows: int = 0  # rows the source itself refused (bad check-in rows)
    # When the source's fetching began (time.monotonic) and how long it took.
    fetch_began: float | None = None
    fetch_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and self.skipped is None

    def status(self) -> tuple[str, str | None]:
        """`ok`, `skipped` or `failed`, and why (one line)."""
        if self.skipped:
            return "skipped", self.skipped
        if self.failures:
            return "failed", "; ".join(sorted(set(self.failures.values())))
        return "ok", None

    @property
    def rejected_rows(self) -> int:
        validated = sum(len(report.rejected) for report in self.validations.values())
        return validated + self.refused_rows


def series_requests(
    definitions: Definitions, source: str, start: date, end: date
) -> list[PlannedSeries]:
    """The series of `source` that the quarters touching start..end need, each once."""
    windows: dict[str, PlannedSeries] = {}
    for quarter in quarters_between(start, end):
        okr_file = definitions.for_quarter(quarter)
        if okr_file is None:
            continue
        first, last = max(start, quarter.start), min(end, quarter.end)
        expectations = okr_file.expectations_by_key()
        readers, siblings = _readers(okr_file, source)
        for metric_key, params in okr_file.series_by_key().items():
            if params.source != source:
                continue
            kr_ids = readers[metric_key]
            declared = tuple(block for block in expectations[metric_key].values() if block)
            planned = PlannedSeries(
                params,
                Window(first, last, okr_file.timezone),
                metric_key,
                kr_id=kr_ids[0] if len(kr_ids) == 1 else None,
                quarter=str(quarter),
                sibling_kr_ids=siblings,
                definitions_root=definitions.root,
            )
            known = windows.get(metric_key)
            if known is not None:
                planned = _spanning(known, planned)
                declared = known.expectations + declared
            windows[metric_key] = replace(
                planned,
                expectations=tuple(
                    block for i, block in enumerate(declared) if block not in declared[:i]
                ),
            )
    return sorted(windows.values(), key=lambda planned: planned.metric_key)


def _readers(okr_file: OkrFile, source: str) -> tuple[dict[str, list[str]], tuple[str, ...]]:
    """Per series key of `source`, the KRs reading it; and every KR of the file reading
    the source (file order)."""
    readers: dict[str, list[str]] = {}
    siblings: list[str] = []
    for _, key_result in okr_file.key_results:
        for part in key_result.series_parts:
            if part.source != source:
                continue
            for ids in (readers.setdefault(okr_file.metric_key(key_result, part), []), siblings):
                if key_result.id not in ids:
                    ids.append(key_result.id)
    return readers, tuple(siblings)


def _spanning(known: PlannedSeries, later: PlannedSeries) -> PlannedSeries:
    """One request over both windows of a series two quarters' files need; what the two
    say differently about who reads it is left out."""
    window = Window(min(known.start, later.start), max(known.end, later.end), later.window.timezone)
    return replace(
        later,
        window=window,
        kr_id=later.kr_id if later.kr_id == known.kr_id else None,
        quarter=later.quarter if later.quarter == known.quarter else None,
        sibling_kr_ids=later.sibling_kr_ids if later.sibling_kr_ids == known.sibling_kr_ids else (),
    )


def lint_source_inputs(definitions: Definitions) -> list[Problem]:
    """Problems in the files sources read beside the definitions (check-ins), for `okr lint`."""
    from okr_metrics.connectors.registry import connected_sources

    problems = []
    for name, source in sorted(connected_sources().items()):
        requests: list[SeriesRequest] = []
        for quarter in sorted(definitions.files):
            requests += series_requests(definitions, name, quarter.start, quarter.end)
        if requests:
            found = source.connector_class().lint_inputs(requests)
            problems += [Problem(*problem) for problem in found]
    return sorted(problems, key=lambda p: (p.path, p.line))


def collect_source(
    source: str,
    connector: Connector | None,
    skip_reason: str | None,
    definitions: Definitions,
    start: date,
    end: date,
    warehouse: Warehouse,
    run_id: str,
    progress: Callable[[str], None] = log.info,
) -> CollectResult:
    """Collect one source's series for start..end: `collect_sources` for that source alone,
    fetched on the calling thread."""
    results = collect_sources(
        {source: (connector, skip_reason)},
        definitions,
        start,
        end,
        warehouse,
        run_id,
        progress=progress,
        max_workers=0,
    )
    return results[source]


def collect_sources(
    sources: Mapping[str, tuple[Connector | None, str | None]],
    definitions: Definitions,
    start: date,
    end: date,
    warehouse: Warehouse,
    run_id: str,
    progress: Callable[[str], None] = log.info,
    max_workers: int | None = None,
) -> dict[str, CollectResult]:
    """Collect several sources' series for start..end at once, then validate and store them.

    `sources` maps each source's name to its connector and why it is skipped (the pair
    the Dagster source resource's `connector(...)` returns: `(None, reason)` for a source
    without credentials). Each source's series are fetched on a thread of its own, all
    of them in one call (`daily_series_many`), at most `max_workers` sources at a time
    (default all; 0 fetches on the calling thread, one source after another); the HTTP
    client keeps each API host within its limits.
    Great Expectations is imported and set up on a thread of its own while the sources
    are fetched. Once every fetch has ended, all the fetched series are validated
    together in one batch on the calling thread (GX is not thread-safe), and stored
    source by source, series by series, as `collect_source` always did: rejected rows
    quarantined, a failed series leaving its stored rows alone, the others going on.

    Returns each source's `CollectResult`, in the order of `sources`; the caller records
    its `source_runs` row (`warehouse.record_source_run`) as for one source. A connector
    that raises anything other than `SourceError` fails the call, once the other sources
    are stored. The warehouse is only used on the calling thread.
    """
    plans: dict[str, _SourcePlan] = {}
    for source, (connector, skip_reason) in sources.items():
        plans[source] = _plan(
            source, connector, skip_reason, definitions, start, end, warehouse, progress
        )
    fetching = [plan for plan in plans.values() if plan.fetch_needed]
    if fetching:
        # Seconds of imports and setup, done while the fetch waits on the network.
        prepare_in_background()
    _fetch_all(fetching, max_workers)
    fetched = [
        (plan, outcome)
        for plan in fetching
        for outcome in plan.outcomes
        if outcome.series is not None
    ]
    reports = validate_many(
        [
            SeriesToValidate(
                outcome.series,
                outcome.request.metric.series_kind(),
                outcome.request.start,
                outcome.request.end,
                declared_expectations(outcome.request.expectations),
            )
            for _, outcome in fetched
        ]
    )
    for (_, outcome), report in zip(fetched, reports, strict=True):
        outcome.report = report
    crash: BaseException | None = None
    for plan in fetching:
        if plan.crash is not None:
            crash = crash or plan.crash
            continue
        _store(plan, warehouse, run_id, progress)
    if crash is not None:
        raise crash
    return {source: plan.result for source, plan in plans.items()}


@dataclass
class _Fetched:
    """One series' fetch: the frame or why it failed, then its validation."""

    request: PlannedSeries
    series: pd.DataFrame | None = None
    error: str | None = None
    report: ValidationReport | None = None


@dataclass
class _SourcePlan:
    """One source in a run: its connector, the series to fetch, what the fetch gave."""

    source: str
    connector: Connector | None
    requests: list[PlannedSeries]
    result: CollectResult
    outcomes: list[_Fetched] = field(default_factory=list)
    crash: BaseException | None = None

    @property
    def fetch_needed(self) -> bool:
        return self.connector is not None and bool(self.requests)


def _plan(
    source: str,
    connector: Connector | None,
    skip_reason: str | None,
    definitions: Definitions,
    start: date,
    end: date,
    warehouse: Warehouse,
    progress: Callable[[str], None],
) -> _SourcePlan:
    """The series `source` must fetch (on the calling thread: it reads the warehouse)."""
    requests = series_requests(definitions, source, start, end)
    result = CollectResult(source, requested=len(requests))
    if not requests:
        progress(f"{source}: no key result uses this source from {start} to {end}")
        return _SourcePlan(source, connector, [], result)
    if connector is None:
        result.skipped = skip_reason or "not configured"
        progress(
            f"{source}: skipped ({result.skipped}); its {len(requests)} series keep their "
            "stored values and their KRs are flagged stale"
        )
        return _SourcePlan(source, None, [], result)
    requests = with_new_series_from_quarter_start(requests, warehouse, progress)
    return _SourcePlan(source, connector, requests, result)


def _fetch_all(plans: list[_SourcePlan], max_workers: int | None) -> None:
    """Fetch every plan's series, each source on a thread of its own (0: here, in turn)."""
    if max_workers == 0 or len(plans) <= 1:
        for plan in plans:
            _fetch_source(plan)
        return
    workers = len(plans) if max_workers is None else max(1, min(max_workers, len(plans)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="okr-collect") as pool:
        for future in [pool.submit(_fetch_source, plan) for plan in plans]:
            future.result()


def _fetch_source(plan: _SourcePlan) -> None:
    """One source's series; a `SourceError` costs the series of its query only."""
    assert plan.connector is not None
    plan.result.fetch_began = began = time.monotonic()
    try:
        # The connector merges the series into the fewest queries its API needs.
        answers = plan.connector.daily_series_many(plan.requests)
    except BaseException as crash:  # raised on the calling thread, after the others are stored
        plan.crash = crash
        return
    finally:
        plan.result.fetch_seconds = time.monotonic() - began
    for request in plan.requests:
        answer = answers[request.metric_key]
        if isinstance(answer, SourceError):
            plan.outcomes.append(_Fetched(request, error=answer.reason))
        else:
            plan.outcomes.append(_Fetched(request, answer))


def _store(
    plan: _SourcePlan, warehouse: Warehouse, run_id: str, progress: Callable[[str], None]
) -> None:
    """Write one source's validated series, as they were requested: the rejected rows
    series by series, the valid ones of every series in one transaction."""
    source, connector, result = plan.source, plan.connector, plan.result
    assert connector is not None
    total = len(plan.requests)
    progress(f"{source}: fetched {total} series in {result.fetch_seconds:.1f}s")
    began = time.monotonic()
    windows: list[tuple[str, SeriesWindow]] = []
    for index, outcome in enumerate(plan.outcomes, start=1):
        request = outcome.request
        label = f"{source} [{index}/{total}] {request.metric_key}"
        if outcome.error is not None:
            result.failures[request.metric_key] = outcome.error
            progress(f"{label}: FAILED: {outcome.error}")
            continue
        report = outcome.report
        assert report is not None
        result.validations[request.metric_key] = report
        if report.error:
            # The batch is unusable as a whole (its shape changed, or an expectation is
            # malformed): stored rows stay as they were, and the KRs go stale.
            result.failures[request.metric_key] = report.error
            progress(f"{label}: FAILED validation: {report.error}")
            continue
        if not report.rejected.empty:
            warehouse.write_rejected(
                source, request.metric_key, report.rejected, request.start, request.end, run_id
            )
            progress(f"{label}: {report.summary()}")
        refused = connector.rejected_rows(request)
        keep_dates = rejected_dates(report)
        if request.metric_key in refused:
            own = refused[request.metric_key]
            keep_dates |= dates_within(own["date"], request.start, request.end) - set(
                report.valid["date"]
            )
        windows.append(
            (
                label,
                SeriesWindow(
                    request.metric_key,
                    report.valid,
                    request.start,
                    request.end,
                    frozenset(keep_dates),
                ),
            )
        )
        for metric_key, rows in refused.items():
            # After the validation's rejections, which replace their window's rows.
            warehouse.write_rejected(
                source,
                metric_key,
                rows.assign(expectation=connector.row_expectation),
                request.start,
                request.end,
                run_id,
                whole_series_expectation=connector.row_expectation,
            )
            result.refused_rows += len(rows)
            for reason in rows["reason"]:
                progress(f"{source}: rejected {reason}")
    result.rows += warehouse.replace_series(source, [window for _, window in windows], run_id)
    for label, window in windows:
        progress(f"{label}: {len(window.observations)} days {window.start}..{window.end}")
    if windows:
        progress(
            f"{source}: {result.rows} rows of {len(windows)} series written "
            f"in {time.monotonic() - began:.1f}s"
        )
    connector.finish()


def with_new_series_from_quarter_start(
    requests: list[PlannedSeries], warehouse: Warehouse, progress: Callable[[str], None]
) -> list[PlannedSeries]:
    """Fetch a series the warehouse has never seen from its quarter's first day.

    A KR whose metric was added or changed mid-quarter has a new series key; fetching
    only the nightly window would score a partial sum as if it were the quarter's. Only
    rows of the window's own quarter count: a series the last quarter fetched (the same
    query, kept across quarters) is still new to this one.
    """
    late = [r for r in requests if Quarter.containing(r.start).start < r.start]
    if not late:
        return requests
    known: set[tuple[str, date]] = set()
    for start in sorted({r.start for r in late}):
        keys = [r.metric_key for r in late if r.start == start]
        first_day = Quarter.containing(start).start
        known |= {
            (key, start) for key in warehouse.keys_observed_before(keys, start, since=first_day)
        }
    extended = []
    for request in requests:
        first_day = Quarter.containing(request.start).start
        if request in late and (request.metric_key, request.start) not in known:
            progress(
                f"{request.metric.source}: {request.metric_key} is new this quarter; "
                f"fetching it from {first_day}"
            )
            request = request.starting(first_day)
        extended.append(request)
    return extended


def declared_expectations(blocks: Iterable[Expectations | None]) -> list[DeclaredExpectation]:
    """The expectations the YAML `expect` blocks declare, as Great Expectations names and
    arguments; an expectation several blocks declare is checked once."""
    declared: list[DeclaredExpectation] = []
    for expect in blocks:
        if expect is None:
            continue
        found = []
        if expect.min is not None or expect.max is not None:
            bounds = {"min_value": expect.min, "max_value": expect.max}
            found.append(
                DeclaredExpectation(
                    "expect_column_values_to_be_between",
                    {key: value for key, value in bounds.items() if value is not None},
                )
            )
        for item in expect.gx:
            ((name, arguments),) = item.items()
            found.append(DeclaredExpectation(name, dict(arguments or {})))
        declared += [item for item in found if item not in declared]
    return declared


def rejected_dates(report: ValidationReport) -> set[date]:
    """Days whose new rows were rejected: what was stored for them before is kept."""
    return dates_within(report.rejected["date"])


def dates_within(texts, start: date = date.min, end: date = date.max) -> set[date]:
    """The dates among `texts` (as the source wrote them) from `start` through `end`."""
    days = set()
    for text in texts:
        try:
            day = date.fromisoformat(str(text))
        except ValueError:
            continue
        if start <= day <= end:
            days.add(day)
    return days
