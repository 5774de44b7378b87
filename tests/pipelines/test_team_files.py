"""A quarter split over team files (`okr_defs/2026-Q4/*.yaml`): loading, lint, a backfill."""

from __future__ import annotations

import shutil
import textwrap
from datetime import date
from pathlib import Path

import pytest
import yaml

from okr_metrics.connectors.registry import connected_sources
from okr_metrics.pipelines.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from okr_metrics.pipelines.dashboard import board
from okr_metrics.pipelines.definitions import Problem, load_definitions
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
Q4 = Quarter(2026, 4)
# Which team file holds each of the sample's objectives (by position in 2026-Q4.yaml).
TEAMS = {"growth.yaml": (0, 1), "revenue.yaml": (2, 3), "support.yaml": (4,)}


def split_sample(defs: Path) -> dict[str, list[dict]]:
    """The sample 2026-Q4 split over three team files beside a `_quarter.yaml`; 2026-Q3
    and the check-ins as they are. Returns each team file's objectives."""
    defs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "okr_defs" / "2026-Q3.yaml", defs / "2026-Q3.yaml")
    shutil.copytree(REPO / "okr_defs" / "checkins", defs / "checkins")
    whole = yaml.safe_load((REPO / "okr_defs" / "2026-Q4.yaml").read_text(encoding="utf-8"))
    objectives = whole.pop("objectives")
    folder = defs / "2026-Q4"
    folder.mkdir()
    (folder / "_quarter.yaml").write_text(yaml.safe_dump(whole, sort_keys=False))
    teams = {}
    for name, positions in TEAMS.items():
        teams[name] = [objectives[position] for position in positions]
    assert sum(len(team) for team in teams.values()) == len(objectives)
    # The support team's objective is shared: growth's onboarding aligns to it.
    teams["growth.yaml"][1]["aligns_to"] = teams["support.yaml"][0]["id"]
    for name, team in teams.items():
        (folder / name).write_text(yaml.safe_dump({"objectives": team}, sort_keys=False))
    return teams


def test_a_split_quarter_is_the_one_file_quarter(tmp_path):
    split_sample(tmp_path / "okr_defs")
    split = load_definitions(tmp_path / "okr_defs")
    one_file = load_definitions(REPO / "okr_defs")
    assert [str(p) for p in split.problems] == []
    assert split.paths[Q4] == tmp_path / "okr_defs" / "2026-Q4"
    assert [p.name for p in split.sources[Q4]] == ["_quarter.yaml", *TEAMS]
    merged, sample = split.for_quarter(Q4), one_file.for_quarter(Q4)

    # Metric keys and definition hashes do not move when a quarter is split.
    def keys(okr_file):
        return {
            kr.id: (
                [okr_file.metric_key(kr, part) for part in kr.series_parts],
                okr_file.definition_hash(kr),
            )
            for _, kr in okr_file.key_results
        }

    assert keys(merged) == keys(sample)
    # The objectives come in the files' order (growth, revenue, support): the sample's.
    assert [o.id for o in merged.objectives] == [o.id for o in sample.objectives]
    # A team file, or the quarter's folder, given alone is read with its quarter.
    for alone in (
        tmp_path / "okr_defs" / "2026-Q4",
        tmp_path / "okr_defs" / "2026-Q4" / "growth.yaml",
    ):
        found = load_definitions(alone)
        assert list(found.files) == [Q4] and found.problems == []
        assert found.root == tmp_path / "okr_defs"


def test_lint_a_split_quarter(tmp_path, capsys):
    split_sample(tmp_path / "okr_defs")
    assert main(["lint", "--defs", str(tmp_path / "okr_defs")]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "2 quarters valid, 0 error(s), 0 warning(s)"


@pytest.fixture
def sandbox_env(tmp_path, sandbox, monkeypatch):
    """Every source on the sandbox, a scratch Dagster home; the warehouse is the test's."""
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for source in connected_sources().values():
        env = source.connector_class().env
        for name, value in (
            (env.base_url, sandbox.url),
            (env.token, "sandbox-token"),
            (env.user, "demo@example.com"),
        ):
            if name:
                monkeypatch.setenv(name, value)
        if env.credentials_file:
            monkeypatch.delenv(env.credentials_file, raising=False)
    return sandbox


def backfill(monkeypatch, defs: Path, warehouse: Path) -> Warehouse:
    url = f"sqlite:///{warehouse}"
    monkeypatch.setenv("OKR_DEFS", str(defs))
    monkeypatch.setenv("OKR_WAREHOUSE_URL", url)
    assert main(["backfill", "--from", "2026-10-01", "--to", "2026-10-07"]) == EXIT_OK
    return Warehouse(url)


SCORE_COLUMNS = ["kr_id", "as_of", "value", "score", "status", "stale", "definition_hash"]


def test_a_split_quarter_scores_as_the_one_file_quarter(tmp_path, sandbox_env, monkeypatch):
    split_sample(tmp_path / "okr_defs")
    split = backfill(monkeypatch, tmp_path / "okr_defs", tmp_path / "split.db")
    whole = backfill(monkeypatch, REPO / "okr_defs", tmp_path / "whole.db")
    rows = [
        warehouse.read_kr_scores(date(2026, 10, 1), date(2026, 10, 7), quarter="2026-Q4")[
            SCORE_COLUMNS
        ]
        .sort_values(["kr_id", "as_of"])
        .reset_index(drop=True)
        for warehouse in (split, whole)
    ]
    kr_count = sum(1 for _ in load_definitions(REPO / "okr_defs").for_quarter(Q4).key_results)
    assert len(rows[0]) == 7 * kr_count
    assert rows[0].equals(rows[1])
    # Every source answered, the check-ins of okr_defs/checkins/2026-Q4.csv included.
    by_kr = rows[0].set_index(["kr_id", "as_of"])
    assert by_kr.loc[("uptime", date(2026, 10, 1)), "value"] == pytest.approx(0.99991)
    for kr_id in (
        "dau",  # google_analytics
        "mobile-releases",  # github
        "dashboard-paying-customers",  # salesforce
        "new-smb-customers",  # hubspot
        "tickets-within-2h",  # jira
    ):
        assert by_kr.loc[kr_id, "value"].notna().any(), kr_id
    # The aligns_to from growth.yaml to support.yaml's shared objective is a tree edge.
    with split.engine.connect() as connection:
        view = board.resolve_view(connection, quarter="2026-Q4", as_of=date(2026, 10, 7))
        _, roots = board.load_alignment(connection, view)
    support = next(node for node in roots if node.objective_id == "customer-support")
    assert [child.objective_id for child in support.children] == ["onboarding"]


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


KR = """\
      - id: {id}
        title: KR {id}
        type: increase
        start: 0
        target: 10
        metric: {{source: github, repo: acme/app, count: releases}}
"""


def objective(objective_id: str, *kr_ids: str, extra: str = "") -> str:
    head = f"  - id: {objective_id}\n    title: O {objective_id}\n    owner: team\n{extra}"
    return head + "    key_results:\n" + "".join(KR.format(id=kr_id) for kr_id in kr_ids)


def test_each_error_names_its_own_file_and_line(tmp_path, capsys):
    folder = tmp_path / "okr_defs" / "2026-Q4"
    write(folder, "_quarter.yaml", "quarter: 2026-Q4\ntimezone: Europe/Oslo\n")
    mobile = write(folder, "mobile.yaml", "objectives:\n" + objective("mobile", "dau", "releases"))
    web = write(
        folder,
        "web.yaml",
        "objectives:\n"
        + objective("web", "signups", "releases").replace("target: 10", "target: ten", 1),
    )
    platform = write(
        folder,
        "platform.yaml",
        "timezone: UTC\nobjectives:\n"
        + objective("mobile", "uptime", "latency", extra="    colour: blue\n"),
    )
    assert main(["lint", "--defs", str(tmp_path / "okr_defs")]) == EXIT_FAILED
    # Counted by hand in the files written above.
    assert capsys.readouterr().out.splitlines() == [
        f"{platform}:1: timezone: a quarter-level setting; set it in {folder / '_quarter.yaml'} for every team",
        f"{platform}:3: objectives[mobile].id: duplicate id 'mobile' (first at {mobile}:2)",
        f"{platform}:6: objectives[mobile].colour: unknown key",
        f"{web}:10: objectives[web].key_results[signups].target: "
        "Input should be a valid number, unable to parse string as a number",
        f"{web}:12: objectives[web].key_results[releases].id: "
        f"duplicate id 'releases' (first at {mobile}:12)",
    ]


def test_one_file_and_a_folder_for_one_quarter_are_refused(tmp_path, capsys, monkeypatch):
    defs = tmp_path / "okr_defs"
    split_sample(defs)
    shutil.copyfile(REPO / "okr_defs" / "2026-Q4.yaml", defs / "2026-Q4.yaml")
    found = load_definitions(defs)
    assert Q4 not in found.files and Quarter(2026, 3) in found.files
    assert [str(p) for p in found.errors] == [
        f"{defs / '2026-Q4.yaml'}:1: quarter: 2026-Q4 is also defined by the folder "
        f"{defs / '2026-Q4'}/ (a file per team); keep the one file or the folder, not both"
    ]
    monkeypatch.setenv("OKR_DEFS", str(defs))
    monkeypatch.setenv("OKR_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    assert main(["backfill", "--from", "2026-10-01", "--to", "2026-10-02"]) == EXIT_USAGE
    assert "also defined by the folder" in capsys.readouterr().err


def test_settings_file_holds_settings_only_and_the_quarter_matches_its_folder(tmp_path):
    folder = tmp_path / "2026-Q4"
    settings = write(folder, "_quarter.yaml", "quarter: 2026-Q4\nobjectives: []\n")
    team = write(folder, "team.yaml", "quarter: 2026-Q3\nobjectives:\n" + objective("o", "a", "b"))
    assert [str(p) for p in load_definitions(folder).problems] == [
        f"{settings}:2: objectives: _quarter.yaml holds the quarter's settings only "
        "(timezone, status_thresholds, alerts, alert_routes); objectives go in the team files",
        f"{team}:1: quarter: 2026-Q3 does not match its folder 2026-Q4/",
    ]
    write(folder, "_quarter.yaml", "alerts: {dwell_days: 3}\n")
    write(folder, "team.yaml", "objectives:\n" + objective("o", "a", "b"))
    okr_file = load_definitions(folder).for_quarter(Q4)
    assert okr_file.alerts.dwell_days == 3 and okr_file.timezone == "UTC"


def test_definitions_are_parsed_once_while_their_bytes_stay_the_same(tmp_path):
    path = write(
        tmp_path, "2026-Q4.yaml", "quarter: 2026-Q4\nobjectives:\n" + objective("o", "a", "b")
    )
    first, second = load_definitions(tmp_path), load_definitions(tmp_path)
    assert first.files[Q4] is second.files[Q4]  # the same parse
    first.problems.append(Problem(str(path), 1, "added by a caller"))
    assert load_definitions(tmp_path).problems == []  # each caller has its own lists
    # The same size, written at once (often within one tick of the file clock): re-read.
    path.write_text(path.read_text().replace("target: 10", "target: 20"))
    third = load_definitions(tmp_path)
    assert third.files[Q4] is not first.files[Q4]
    assert {kr.target for _, kr in third.files[Q4].key_results} == {20}


def test_a_quarter_holds_at_most_5000_key_results_over_all_its_files(tmp_path, monkeypatch):
    from okr_metrics.pipelines.definitions import loader

    monkeypatch.setattr(loader, "MAX_KEY_RESULTS", 5)  # the same rule, at a size a test affords
    folder = tmp_path / "2026-Q4"
    write(folder, "a.yaml", "objectives:\n" + objective("a", "a1", "a2", "a3"))
    b = write(folder, "b.yaml", "objectives:\n" + objective("b", "b1", "b2", "b3"))
    assert [str(p) for p in load_definitions(folder).errors] == [
        f"{b}:1: objectives: the files of 2026-Q4 hold more than 5 key results; "
        "a quarter holds at most 5"
    ]


def test_a_team_file_is_checked_against_its_folders_quarter(tmp_path):
    folder = tmp_path / "2026-Q4"
    write(folder, "a.yaml", "objectives:\n" + objective("a", "a1", "a2"))
    late = objective("b", "b1", "b2").replace(
        "        target: 10\n",
        "        target: 10\n        checkpoints:\n          - {date: 2027-01-15, target: 5}\n",
        1,
    )
    b = write(folder, "b.yaml", "objectives:\n" + late)
    assert [str(p) for p in load_definitions(folder).errors] == [
        f"{b}:12: objectives[b].key_results[b1].checkpoints[0].date: 2027-01-15 is not inside "
        "2026-Q4 before its last day (2026-10-01..2026-12-30)"
    ]
