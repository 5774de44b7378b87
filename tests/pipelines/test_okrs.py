"""The YAML model, its loader and `okr lint`."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import date
from pathlib import Path

import pytest

from okr_metrics.pipelines.cli.main import main
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.definitions.model import definition_hash
from okr_metrics.pipelines.jobs.score import scoring_inputs
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.pipelines.vocabulary.terms import KR_TYPES

REPO = Path(__file__).resolve().parents[2]

VALID_KR = """\
      - id: {id}
        title: KR {id}
        type: increase
        start: 0
        target: 10
        metric: {{source: github, repo: acme/app, count: releases}}
"""


def write(tmp_path: Path, body: str, name: str = "2026-Q4.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    return [str(problem) for problem in load_definitions(path).problems]


def test_sample_definitions_are_clean_and_cover_the_spec():
    definitions = load_definitions(REPO / "okr_defs")
    assert [str(p) for p in definitions.problems] == []
    q4 = definitions.for_quarter(Quarter(2026, 4))
    assert q4 is not None and definitions.for_quarter(Quarter(2026, 3)) is not None
    key_results = [kr for _, kr in q4.key_results]
    assert {kr.type for kr in key_results} == set(KR_TYPES)
    # ... and every kind's option: phased targets, both commitments, a running total
    assert any(kr.checkpoints for kr in key_results)
    assert {kr.commitment for kr in key_results} == {"committed", "aspirational"}
    assert not all(kr.reset_each_quarter for kr in key_results)
    assert {kr.aggregate for kr in key_results} == {
        "sum",
        "latest",
        "mean",
        "mean_7d",
        "min",
        "max",
    }
    sources = set().union(*(kr.sources for kr in key_results))
    assert sources == {"google_analytics", "jira", "github", "salesforce", "hubspot", "manual"}
    assert any(kr.is_ratio for kr in key_results)


def test_unknown_key_names_file_line_and_key(tmp_path):
    path = write(
        tmp_path,
        """\
        quarter: 2026-Q4
        objectives:
          - id: growth
            title: Grow
            key_results:
              - id: dau
                title: DAU
                type: increase
                start: 1
                target: 2
                tagret: 3
                metric: {source: github, repo: acme/app, count: releases}
        """,
    )
    assert problems_of(path) == [
        f"{path}:11: objectives[growth].key_results[dau].tagret: unknown key",
    ]


def test_duplicate_ids_and_start_equal_target(tmp_path):
    path = write(
        tmp_path,
        """\
        quarter: 2026-Q4
        objectives:
          - id: growth
            title: Grow
            key_results:
              - id: dau
                title: DAU
                type: increase
                start: 5
                target: 5
                metric: {source: github, repo: acme/app, count: releases}
          - id: growth
            title: Grow again
            key_results:
              - id: dau
                title: DAU again
                type: decrease
                start: 3
                target: 1
                metric: {source: github, repo: acme/app, count: releases}
        """,
    )
    assert problems_of(path) == [
        f"{path}:6: objectives[growth].key_results[dau]: `start` and `target` are both 5: nothing to move",
        f"{path}:12: objectives[growth].id: duplicate id 'growth' (first at line 3)",
        f"{path}:15: objectives[growth].key_results[dau].id: duplicate id 'dau' (first at line 6)",
    ]


@pytest.mark.parametrize(
    ("snippet", "line", "message"),
    [
        (
            "type: decrease\n        target: 3\n        metric: {source: github, repo: a/b, count: releases}",
            6,
            "objectives[o].key_results[k]: `start` is required for a decrease KR",
        ),
        (
            "type: increase\n        start: 0\n        target: 3\n        metric: {source: tableau, x: 1}",
            11,
            "objectives[o].key_results[k].metric: unknown source 'tableau'",
        ),
        (
            "type: increase\n        start: 0\n        target: 3\n"
            "        metric: {source: github, repo: a/b, count: releases, aggregate: median}",
            11,
            "objectives[o].key_results[k].metric.aggregate: unknown aggregate 'median'",
        ),
        (
            "type: increase\n        start: 0\n        target: 3\n"
            "        metric: {source: jira, jql: project = X, measure: resolved_within}",
            11,
            "objectives[o].key_results[k].metric: `measure: resolved_within` needs `hours`",
        ),
        (
            "type: increase\n        start: 0\n        target: 1\n        metric:\n"
            "          ratio:\n"
            "            numerator: {source: github, repo: a/b, count: releases}\n"
            "            denominator: {source: github, repo: a/b, count: merged_pull_requests}\n"
            "          aggregate: max",
            6,
            "objectives[o].key_results[k]: aggregate `max` cannot apply to a ratio",
        ),
    ],
)
def test_key_result_errors(tmp_path, snippet, line, message):
    path = write(
        tmp_path,
        "quarter: 2026-Q4\nobjectives:\n  - id: o\n    title: O\n    key_results:\n"
        "      - id: k\n        title: K\n        " + snippet + "\n",
    )
    found = problems_of(path)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:{line}: {message}")


def test_bad_quarter_and_timezone(tmp_path):
    path = write(
        tmp_path,
        "quarter: 2026-Q5\ntimezone: Mars/Olympus\nobjectives:\n  - id: o\n    title: O\n"
        "    key_results:\n" + VALID_KR.format(id="a"),
        name="okrs.yaml",
    )
    assert problems_of(path) == [
        f"{path}:1: quarter: bad quarter '2026-Q5': expected YYYY-Qn, e.g. 2026-Q4",
        f"{path}:2: timezone: unknown timezone 'Mars/Olympus' (use an IANA name such as Europe/Oslo)",
    ]


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "quarter: 2026-Q4\nobjectives:\n  - id: [unclosed\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:")
    assert "invalid YAML" in problem


def test_quarter_must_match_file_name(tmp_path):
    path = write(
        tmp_path,
        "quarter: 2026-Q3\nobjectives:\n  - id: o\n    title: O\n    owner: o\n    key_results:\n"
        + VALID_KR.format(id="a")
        + VALID_KR.format(id="b"),
    )
    assert problems_of(path) == [
        f"{path}:1: quarter: 2026-Q3 does not match the file name 2026-Q4.yaml"
    ]


def test_best_practice_breaches_are_warnings(tmp_path, capsys):
    objectives = "".join(
        f"  - id: o{n}\n    title: O{n}\n    owner: t\n    key_results:\n"
        + VALID_KR.format(id=f"k{n}")
        for n in range(6)
    )
    path = write(tmp_path, "quarter: 2026-Q4\nobjectives:\n" + objectives)
    assert main(["lint", "--defs", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}:2: warning: objectives: 6 objectives; keep a quarter to 5 or fewer"
    assert out[1] == f"{path}:3: warning: objectives[o0]: 1 key results; aim for 2 to 4"
    assert len(out) == 7


def test_lint_exits_1_on_errors(tmp_path, capsys):
    write(tmp_path, "quarter: 2026-Q4\nobjectivs: []\n")
    assert main(["lint", "--defs", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / '2026-Q4.yaml'}:2: objectivs: unknown key" in out
    assert f"{tmp_path / '2026-Q4.yaml'}:1: objectives: missing required key" in out


def test_lint_passes_on_the_samples(capsys):
    assert main(["lint", "--defs", str(REPO / "okr_defs")]) == 0
    assert capsys.readouterr().out == ""


def test_shared_queries_share_a_key_and_ratio_kinds(tmp_path):
    path = write(
        tmp_path,
        """\
        quarter: 2026-Q4
        timezone: Europe/Oslo
        objectives:
          - id: o
            title: O
            key_results:
              - id: a
                title: A
                type: increase
                start: 0
                target: 10
                metric: {source: github, repo: acme/app, count: releases}
              - id: b
                title: B
                type: maintain_above
                target: 1
                metric: {source: github, count: releases, repo: acme/app, aggregate: latest}
              - id: c
                title: C
                type: increase
                start: 0.5
                target: 0.9
                metric: {source: jira, jql: project = SUP, measure: resolved_within, hours: 2}
        """,
    )
    okr_file = load_definitions(path).for_quarter(Quarter(2026, 4))
    keys = okr_file.series_by_key()
    assert sorted(keys) == [
        "github:count=releases;repo=acme/app@Europe/Oslo",
        "jira:count=resolved;jql=project = SUP@Europe/Oslo",
        "jira:count=resolved_within;hours=2.0;jql=project = SUP@Europe/Oslo",
    ]
    _, inputs = scoring_inputs(okr_file)
    assert inputs[0].metric_key == inputs[1].metric_key
    assert inputs[0].aggregate == "sum" and inputs[1].aggregate == "latest"
    assert inputs[2].numerator_key.startswith("jira:count=resolved_within")
    assert inputs[2].aggregate == "sum"
    # A changed target changes the hash; a changed title does not.
    assert inputs[0].definition_hash != inputs[1].definition_hash


SHARED_SERIES = """\
quarter: 2026-Q4
objectives:
  - id: platform
    title: Platform
    owner: platform
    key_results:
      - id: releases
        title: Ship releases
        type: increase
        start: 0
        target: 10
        metric:
          source: github
          repo: acme/app
          count: releases
          expect: {max: 3}
      - id: releases-bounded
        title: Releases, never more than five a day
        type: maintain_below
        target: 2
        metric:
          source: github
          repo: acme/app
          count: releases
          expect: {min: 0, max: 5}
"""


def test_kris_sharing_a_series_apply_every_expect_block_and_lint_warns(tmp_path):
    from datetime import date

    from okr_metrics.pipelines.jobs.collect import declared_expectations, series_requests

    path = write(tmp_path, SHARED_SERIES)
    definitions = load_definitions(path)
    assert [str(p) for p in definitions.problems] == [
        f"{path}:21: warning: objectives[platform].key_results[releases-bounded].metric: "
        "KRs releases, releases-bounded read the same series "
        "(github:count=releases;repo=acme/app) but declare different expect blocks; all of "
        'them apply to it (releases: {"max": 3.0}; releases-bounded: {"max": 5.0, "min": 0.0})'
    ]
    (request,) = series_requests(definitions, "github", date(2026, 10, 1), date(2026, 10, 7))
    declared = declared_expectations(request.expectations)
    assert [(item.name, dict(item.kwargs)) for item in declared] == [
        ("expect_column_values_to_be_between", {"max_value": 3.0}),
        ("expect_column_values_to_be_between", {"min_value": 0.0, "max_value": 5.0}),
    ]


def test_the_same_expect_block_twice_is_no_disagreement(tmp_path):
    path = write(tmp_path, SHARED_SERIES.replace("expect: {min: 0, max: 5}", "expect: {max: 3}"))
    definitions = load_definitions(path)
    assert definitions.problems == []
    from datetime import date

    from okr_metrics.pipelines.jobs.collect import declared_expectations, series_requests

    (request,) = series_requests(definitions, "github", date(2026, 10, 1), date(2026, 10, 7))
    assert len(declared_expectations(request.expectations)) == 1


def test_definition_hash_is_canonical_json_sha256_prefix():
    definition = {"b": date(2026, 10, 1), "a": 1}
    # sort_keys, compact separators, dates through str()
    expected = hashlib.sha256(b'{"a":1,"b":"2026-10-01"}').hexdigest()[:16]
    assert definition_hash(definition) == expected == "44cce8a04940e5e7"
    assert definition_hash({"a": 1, "b": date(2026, 10, 1)}) == expected
    assert definition_hash({"a": 2, "b": date(2026, 10, 1)}) != expected
