"""Properties of the loader, the query-fragment checks and the scoring, over generated input.

The loader never raises on any text, YAML-like or not: every problem is one
`file:line: message` line. A JQL or SOQL fragment the checks accept keeps the date
window outside the parentheses the client wraps it in. Scores are always within
0..1 (or null); a decrease KR's progress grows as its value falls toward the target;
and the row of as-of day D never changes when the days after D do.

Hypothesis runs are bounded (`max_examples`, a deadline, no example database) so the
file takes a few seconds.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okr_metrics.connectors.jira.client import search_jql
from okr_metrics.connectors.jira.params import JiraMetric
from okr_metrics.connectors.kit import Window
from okr_metrics.connectors.salesforce.client import build_soql
from okr_metrics.connectors.salesforce.params import SalesforceMetric
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.scoring.rules import (
    KR_SCORE_COLUMNS,
    KeyResultInput,
    progress_and_score,
    score_key_results,
)
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.pipelines.vocabulary.terms import (
    AGGREGATES,
    COMMITMENTS,
    KR_TYPES,
    RATIO_AGGREGATES,
    STATUSES,
)

REPO = Path(__file__).resolve().parents[2]
BOUNDED = settings(
    max_examples=100,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
QUARTER = Quarter(2026, 4)

# --- the loader -----------------------------------------------------------------------------

YAML_PIECES = [
    "quarter", "objectives", "id", "title", "owner", "aligns_to", "key_results", "type",
    "start", "target", "weight", "metric", "source", "ratio", "numerator", "aggregate",
    "expect", "gx", "github", "jira", "manual", "salesforce", "increase", "decrease",
    "milestone", "2026-Q4", "0", "1e400", "-1", ".nan", "&a ", "*a", "- ", ": ", "? ",
    "{", "}", "[", "]", ", ", "\n", "  ", "'", '"', "\\", "# ", "!!str ", "!!python/object ",
    "<<: ", "|\n", "\t", "\x00", "\u2028", "é", "---\n", "...\n", "%YAML 1.1\n",
]  # fmt: skip
yaml_like = st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=4), max_size=80).map("".join)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
keys = st.sampled_from(YAML_PIECES[:25]) | st.text(max_size=6)
documents = st.recursive(
    scalars | st.sampled_from(YAML_PIECES[17:30]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
SHIPPED = (REPO / "okr_defs" / "2026-Q4.yaml").read_text(encoding="utf-8").splitlines()


@st.composite
def edited_shipped_file(draw: st.DrawFn) -> str:
    """The shipped definitions with a few lines deleted, repeated, cut or overwritten."""
    lines = list(SHIPPED)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["delete", "repeat", "cut", "replace"]))
        if edit == "delete":
            del lines[index]
        elif edit == "repeat":
            lines.insert(index, lines[index])
        elif edit == "cut":
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
        else:
            lines[index] = draw(yaml_like)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def definitions_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("definitions") / "2026-Q4.yaml"


def check_loads_cleanly(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    found = load_definitions(path)  # never raises
    # YAML's line breaks: \r\n, \n, \r, NEL, and the Unicode line and paragraph separators.
    line_count = len(re.findall("\r\n|[\n\r\x85\u2028\u2029]", text)) + 1
    for problem in found.problems:
        shown = str(problem)
        assert "\n" not in shown and "\r" not in shown, shown
        assert shown.startswith(f"{path}:{problem.line}: "), shown
        assert 1 <= problem.line <= line_count, shown
    if found.errors:
        assert found.files == {}


@BOUNDED
@given(text=yaml_like)
def test_the_loader_never_raises_on_yaml_like_text(definitions_path, text):
    check_loads_cleanly(definitions_path, text)


@BOUNDED
@given(document=documents)
def test_the_loader_never_raises_on_any_yaml_document(definitions_path, document):
    check_loads_cleanly(definitions_path, yaml.safe_dump(document, allow_unicode=True))


@BOUNDED
@given(
    document=st.fixed_dictionaries(
        {"quarter": st.just("2026-Q4"), "objectives": st.lists(documents, max_size=3)}
    )
)
def test_the_loader_never_raises_on_objectives_of_any_shape(definitions_path, document):
    check_loads_cleanly(definitions_path, yaml.safe_dump(document, allow_unicode=True))


@BOUNDED
@given(text=edited_shipped_file())
def test_the_loader_never_raises_on_an_edited_shipped_file(definitions_path, text):
    check_loads_cleanly(definitions_path, text)


# --- query fragments ------------------------------------------------------------------------

FRAGMENT_PIECES = [
    "a", "b", " ", "(", ")", "'", '"', "\\", "=", "-", "/", "*", ";", "ORDER BY", "order by ",
    "LIMIT", "x", "AND", " OR ", "1",
]  # fmt: skip
fragments = st.lists(st.sampled_from(FRAGMENT_PIECES), min_size=1, max_size=25).map("".join)


def closing_paren(query: str, opening: int, quotes: str) -> int | None:
    """Where the parenthesis at `opening` closes, reading strings and escapes as the APIs do."""
    depth, quote, index = 0, None, opening
    while index < len(query):
        char = query[index]
        if char == "\\":
            index += 2
            continue
        if quote:
            quote = None if char == quote else quote
        elif char in quotes:
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def accepted(model, **keys) -> bool:
    try:
        model(**keys)
    except ValueError:
        return False
    return True


@settings(BOUNDED, max_examples=300)
@given(jql=fragments)
def test_an_accepted_jql_keeps_the_window_outside_its_parentheses(jql):
    if not accepted(JiraMetric, source="jira", count="created", jql=jql):
        return
    sent = search_jql(jql, "created", date(2026, 10, 1), date(2026, 10, 31))
    window = ' AND created >= "'
    if not sent.startswith("("):
        return  # an empty condition: the window alone
    end = closing_paren(sent, 0, "\"'")
    assert end is not None and sent[end + 1 :].startswith(window), sent
    assert window not in sent[:end], sent


@settings(BOUNDED, max_examples=300)
@given(where=fragments)
def test_an_accepted_soql_condition_keeps_the_window_outside_its_parentheses(where):
    if not accepted(SalesforceMetric, source="salesforce", where=where):
        return
    soql = build_soql(
        "Opportunity", where, "CloseDate", "date", Window(date(2026, 10, 1), date(2026, 10, 31))
    )
    opening = soql.index(" WHERE ") + len(" WHERE ")
    if not where.strip():
        return
    end = closing_paren(soql, opening, "'")
    assert end is not None and soql[end + 1 :] == (
        " AND CloseDate >= 2026-10-01 AND CloseDate <= 2026-10-31"
    ), soql


# --- scoring --------------------------------------------------------------------------------

# Within +-1e6, three decimals: no subnormal float, whose quotient would round to 0.
numbers = st.integers(-(10**9), 10**9).map(lambda n: n / 1000)


@st.composite
def key_results(draw: st.DrawFn) -> KeyResultInput:
    kr_type = draw(st.sampled_from(KR_TYPES))
    is_ratio = draw(st.booleans())
    aggregate = draw(st.sampled_from(RATIO_AGGREGATES if is_ratio else AGGREGATES))
    start = draw(numbers)
    target = draw(numbers.filter(lambda t: abs(t - start) > 1e-6))
    if kr_type == "increase" and target < start or kr_type == "decrease" and target > start:
        start, target = target, start
    keys = {"numerator_key": "n", "denominator_key": "d"} if is_ratio else {"metric_key": "m"}
    paced = kr_type in ("increase", "decrease")
    checkpoints: tuple[tuple[date, float], ...] = ()
    if paced and draw(st.booleans()):
        offset = draw(st.integers(0, QUARTER.days - 2))
        share = draw(st.integers(0, 100)) / 100
        checkpoints = ((QUARTER.start + timedelta(days=offset), start + (target - start) * share),)
    return KeyResultInput(
        kr_id="k",
        objective_id="o",
        title="K",
        owner=None,
        kr_type=kr_type,
        start=start if paced else None,
        target=None if kr_type in ("maintain_between", "baseline") else target,
        weight=1.0,
        aggregate=aggregate,
        tracks_staleness=draw(st.booleans()),
        low=min(start, target) if kr_type == "maintain_between" else None,
        high=max(start, target) if kr_type == "maintain_between" else None,
        commitment=draw(st.sampled_from(COMMITMENTS)),
        checkpoints=checkpoints,
        **keys,
    )


def daily_series(values: st.SearchStrategy = numbers) -> st.SearchStrategy[dict[int, float]]:
    """Day offsets in the quarter -> values; a day not in it has no observation."""
    return st.dictionaries(st.integers(0, QUARTER.days - 1), values, max_size=40)


def observations(series: dict[str, dict[int, float]]) -> pd.DataFrame:
    rows = [
        (key, QUARTER.start + timedelta(days=offset), value)
        for key, days in series.items()
        for offset, value in sorted(days.items())
    ]
    return pd.DataFrame(rows, columns=["metric_key", "date", "value"])


def score(key_result: KeyResultInput, series: dict[str, dict[int, float]]) -> pd.DataFrame:
    days = [QUARTER.start + timedelta(days=offset) for offset in range(QUARTER.days)]
    return score_key_results([key_result], QUARTER, observations(series), days)


@BOUNDED
@given(
    kr_type=st.sampled_from(["increase", "decrease", "milestone"]),
    value=numbers,
    start=numbers,
    target=numbers,
)
def test_a_score_is_always_within_0_and_1(kr_type, value, start, target):
    if start == target:
        return
    progress, kr_score = progress_and_score(kr_type, value, start, target)
    assert 0.0 <= kr_score <= 1.0
    assert math.isfinite(progress)
    if kr_type != "milestone":
        assert kr_score == min(1.0, max(0.0, progress))


@BOUNDED
@given(start=numbers, target=numbers, farther=numbers, nearer=numbers)
def test_a_decrease_kr_progresses_as_its_value_falls_toward_the_target(
    start, target, farther, nearer
):
    if start <= target:
        start, target = target, start
    if start - target < 1e-3 or nearer >= farther:
        return
    before, _ = progress_and_score("decrease", farther, start, target)
    after, _ = progress_and_score("decrease", nearer, start, target)
    assert after > before or math.isclose(after, before, abs_tol=1e-9)
    assert progress_and_score("decrease", start, start, target)[0] == 0.0
    assert progress_and_score("decrease", target, start, target)[0] == pytest.approx(1.0)
    # Below the start is progress; above it, a step back.
    assert progress_and_score("decrease", start - 1, start, target)[0] > 0
    assert progress_and_score("decrease", start + 1, start, target)[0] < 0


@settings(BOUNDED, max_examples=60)
@given(
    key_result=key_results(),
    main=daily_series(),
    other=daily_series(numbers.filter(lambda v: v != 0)),
)
def test_every_row_of_a_quarter_scores_within_bounds(key_result, main, other):
    series = {"n": main, "d": other} if key_result.is_ratio else {"m": main}
    rows = score(key_result, series)
    assert len(rows) == QUARTER.days and list(rows.columns) == KR_SCORE_COLUMNS
    scores = rows["score"].to_numpy()
    known = ~np.isnan(scores)
    assert ((scores[known] >= 0) & (scores[known] <= 1)).all()
    assert set(rows["status"]) <= set(STATUSES)
    assert (rows.loc[rows["value"].isna(), "status"] == "no_data").all()
    if key_result.kr_type in ("increase", "decrease"):
        valued = rows[rows["value"].notna()]
        toward = np.sign(valued["value"] - key_result.start) * np.sign(
            key_result.target - key_result.start
        )
        assert (np.sign(valued["progress"]) == toward).all()


@settings(BOUNDED, max_examples=60)
@given(
    key_result=key_results(),
    main=daily_series(),
    other=daily_series(numbers.filter(lambda v: v != 0)),
    later_main=daily_series(),
    later_other=daily_series(),
    as_of=st.integers(0, QUARTER.days - 1),
)
def test_day_d_never_depends_on_the_days_after_it(
    key_result, main, other, later_main, later_other, as_of
):
    def until_d(days: dict[int, float]) -> dict[int, float]:
        return {offset: value for offset, value in days.items() if offset <= as_of}

    def after_d(days: dict[int, float]) -> dict[int, float]:
        return {offset: value for offset, value in days.items() if offset > as_of}

    keys = ("n", "d") if key_result.is_ratio else ("m",)
    first = dict(zip(keys, (main, other), strict=False))
    # The same days up to D; after D, other values, other days, or none at all.
    second = {
        key: until_d(days) | after_d(later)
        for (key, days), later in zip(first.items(), (later_main, later_other), strict=False)
    }
    before = score(key_result, first).iloc[: as_of + 1]
    changed = score(key_result, second).iloc[: as_of + 1]
    pd.testing.assert_frame_equal(before, changed)
