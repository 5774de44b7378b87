"""Every page, served by uvicorn over a warehouse the pipeline wrote, against its rows.

The expected values come from the warehouse itself, read here with plain SQL.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from pagetools import LAST_DAY, REPO, get, parse

from okr_metrics.pipelines.dashboard.formats import value_format
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.vocabulary.quarters import Quarter


@pytest.fixture(scope="module")
def db(built_warehouse):
    connection = sqlite3.connect(built_warehouse)
    connection.row_factory = sqlite3.Row
    yield connection
    connection.close()


def rows(db, sql, *params):
    return [dict(row) for row in db.execute(sql, params)]


def kr_rows(db, quarter, as_of):
    return rows(
        db,
        "SELECT k.*, o.owner AS objective_owner FROM kr_scores k JOIN objective_scores o "
        "ON o.quarter = k.quarter AND o.objective_id = k.objective_id AND o.as_of = k.as_of "
        "WHERE k.quarter = ? AND k.as_of = ?",
        quarter,
        as_of,
    )


def same_score(attribute: str, value) -> bool:
    return attribute == "" if value is None else abs(float(attribute) - value) < 1e-12


def path_points(path: str) -> int:
    return len(re.findall(r"[ML]", path))


def test_the_overview_shows_every_objective_and_kr_as_the_warehouse_has_them(dashboard_url, db):
    response = get(dashboard_url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = parse(response.text)
    assert page.one(data_field="as-of").text == LAST_DAY.isoformat()
    day = LAST_DAY.isoformat()
    objectives = rows(
        db, "SELECT * FROM objective_scores WHERE quarter = '2026-Q4' AND as_of = ?", day
    )
    q4 = load_definitions(REPO / "okr_defs").for_quarter(Quarter(2026, 4))
    shown = page.find_all(data_objective_id=True)
    # In the definitions' order, every one of them.
    assert [e.attrs["data-objective-id"] for e in shown] == [o.id for o in q4.objectives]
    for objective in objectives:
        element = page.one(data_objective_id=objective["objective_id"])
        assert same_score(element.attrs["data-score"], objective["score"])
        assert element.attrs["data-status"] == objective["status"]
        assert element.field("score") == f"{objective['score']:.2f}"
        assert element.field("owner") == objective["owner"]
        assert element.field("coverage") == f"{objective['coverage'] * 100:.0f}%"
    krs = kr_rows(db, "2026-Q4", day)
    assert len(page.find_all(data_kr_id=True)) == len(krs) == 19
    for kr in krs:
        objective = page.one(data_objective_id=kr["objective_id"])
        element = objective.one(data_kr_id=kr["kr_id"])  # under its own objective
        assert same_score(element.attrs["data-score"], kr["score"])
        assert element.attrs["data-status"] == kr["status"]
        assert element.attrs["data-owner"] == kr["owner"]
        # A baseline KR is never scored: a dash.
        assert element.field("score") == ("–" if kr["score"] is None else f"{kr['score']:.2f}")
        (definition,) = db.execute(
            "SELECT definition FROM kr_definitions WHERE quarter = '2026-Q4' AND kr_id = ? "
            "AND definition_hash = ?",
            (kr["kr_id"], kr["definition_hash"]),
        ).fetchone()
        written = value_format(kr["kr_type"], kr["start"], kr["target"], json.loads(definition))
        assert element.field("value") == written(kr["value"])
        assert element.one("a", data_link="kr").attrs["href"] == f"/kr/2026-Q4/{kr['kr_id']}"
        trend = element.one("svg", data_chart="trend")
        days_with_value = db.execute(
            "SELECT COUNT(*) FROM kr_scores WHERE quarter = '2026-Q4' AND kr_id = ? "
            "AND as_of <= ? AND value IS NOT NULL",
            (kr["kr_id"], day),
        ).fetchone()[0]
        value_line = trend.find_all("path", data_line="value")
        assert path_points(value_line[0].attrs["d"] if value_line else "") == days_with_value
    # Written by hand: thousands get separators, shares are percents.
    dau = next(kr for kr in krs if kr["kr_id"] == "dau")
    assert page.one(data_kr_id="dau").field("value") == f"{dau['value']:,.0f}"
    push = next(kr for kr in krs if kr["kr_id"] == "push-opt-in")
    assert page.one(data_kr_id="push-opt-in").field("value") == f"{round(push['value'] * 100)}%"
    # A GA4 duration metric (seconds, its definition says) as minutes and seconds.
    seconds = round(next(kr for kr in krs if kr["kr_id"] == "session-length")["value"])
    minutes_text = f"{seconds // 60}m {seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    assert page.one(data_kr_id="session-length").field("value") == minutes_text


def test_every_page_has_the_filter_form(dashboard_url, db):
    day = LAST_DAY.isoformat()
    owners = {kr["owner"] for kr in kr_rows(db, "2026-Q4", day)} | {
        row["owner"]
        for row in rows(
            db, "SELECT owner FROM objective_scores WHERE quarter = '2026-Q4' AND as_of = ?", day
        )
    }
    for path in ("/", "/kr/2026-Q4/dau", "/weekly", "/alignment", "/quarters"):
        page = parse(get(dashboard_url + path).text)
        form = page.one("form", data_filter=True)
        assert form.attrs["method"] == "get"
        options = [o.attrs["value"] for o in form.one("select", name="team").find_all("option")]
        assert options == ["", *sorted(owners)], path
        assert form.one("input", name="as_of").attrs["type"] == "date"
        assert form.find_all("button", data_action="apply")
        assert page.one(data_field="as-of").text == day


def test_the_team_filter_narrows_every_page(dashboard_url, db):
    day = LAST_DAY.isoformat()
    krs = kr_rows(db, "2026-Q4", day)
    # A team sees its own KRs and every KR of the objectives it owns.
    for team in ("platform", "growth"):
        expected = {kr["kr_id"] for kr in krs if team in (kr["owner"], kr["objective_owner"])}
        assert 0 < len(expected) < len(krs)
        page = parse(get(dashboard_url + "/", params={"team": team}).text)
        assert {e.attrs["data-kr-id"] for e in page.find_all(data_kr_id=True)} == expected
        selected = page.one("select", name="team").one("option", selected=True)
        assert selected.attrs["value"] == team
        weekly = parse(get(dashboard_url + "/weekly", params={"team": team}).text)
        assert {e.attrs["data-kr-id"] for e in weekly.find_all("tr", data_kr_id=True)} == expected
        tree = parse(get(dashboard_url + "/alignment", params={"team": team}).text)
        assert {e.attrs["data-kr-id"] for e in tree.find_all(data_kr_id=True)} == expected
    assert (
        parse(get(dashboard_url + "/", params={"team": "nobody"}).text).find_all(data_kr_id=True)
        == []
    )


def test_as_of_shows_the_board_as_it_stood_that_day(dashboard_url, db):
    newest = {kr["kr_id"]: kr["score"] for kr in kr_rows(db, "2026-Q4", LAST_DAY.isoformat())}
    page = parse(get(dashboard_url + "/", params={"as_of": "2026-10-10"}).text)
    assert page.one(data_field="as-of").text == "2026-10-10"
    assert page.one("input", name="as_of").attrs["value"] == "2026-10-10"
    then = kr_rows(db, "2026-Q4", "2026-10-10")
    changed = 0
    for kr in then:
        element = page.one(data_kr_id=kr["kr_id"])
        assert same_score(element.attrs["data-score"], kr["score"])
        assert element.attrs["data-status"] == kr["status"]
        changed += kr["score"] != newest[kr["kr_id"]]
    assert changed > 0
    # The trend stops on the day: 10 days of Q4 at most.
    trend = page.one(data_kr_id="dau").one("svg", data_chart="trend")
    assert path_points(trend.one("path", data_line="value").attrs["d"]) == 10
    # A day in Q3 shows Q3; a day after the newest shows the newest.
    q3 = parse(get(dashboard_url + "/", params={"as_of": "2026-09-25"}).text)
    assert {e.attrs["data-kr-id"] for e in q3.find_all(data_kr_id=True)} == {
        kr["kr_id"] for kr in kr_rows(db, "2026-Q3", "2026-09-25")
    }
    later = parse(get(dashboard_url + "/", params={"as_of": "2026-10-31"}).text)
    assert later.one(data_field="as-of").text == LAST_DAY.isoformat()
    # ?quarter= alone: that quarter's newest day.
    final = parse(get(dashboard_url + "/", params={"quarter": "2026-Q3"}).text)
    assert final.one(data_field="as-of").text == "2026-09-30"


def test_a_bad_parameter_is_a_400_that_names_it(dashboard_url):
    response = get(dashboard_url + "/", params={"as_of": "10/20/2026"})
    assert response.status_code == 400
    assert "as_of='10/20/2026': expected a day as YYYY-MM-DD" in parse(response.text).text
    assert get(dashboard_url + "/", params={"quarter": "2026-Q5"}).status_code == 400
    assert get(dashboard_url + "/kr/2026-Q4/no-such-kr").status_code == 404


def test_the_kr_page_charts_the_quarter_and_lists_each_day(dashboard_url, db):
    page = parse(get(dashboard_url + "/kr/2026-Q4/mobile-releases").text)
    for section in ("observations", "rejected", "sources", "checkins", "definitions"):
        assert page.find_all(data_section=section), section
    days = rows(
        db,
        "SELECT * FROM kr_scores WHERE quarter = '2026-Q4' AND kr_id = 'mobile-releases' "
        "ORDER BY as_of",
    )
    history = page.one("svg", data_chart="history")
    assert path_points(history.one("path", data_line="value").attrs["d"]) == len(days) == 20
    assert history.find_all(data_line="expected") and history.find_all(data_line="forecast")
    assert page.one("svg", data_chart="score")
    header = page.one(data_kr_id="mobile-releases")
    assert same_score(header.attrs["data-score"], days[-1]["score"])
    assert header.field("value") == f"{days[-1]['value']:.0f}"
    # As of an earlier day: only the days up to it.
    earlier = parse(get(dashboard_url + "/kr/2026-Q4/mobile-releases?as_of=2026-10-10").text)
    history = earlier.one("svg", data_chart="history")
    assert path_points(history.one("path", data_line="value").attrs["d"]) == 10
    assert earlier.one(data_field="as-of").text == "2026-10-10"
    # One definition in force all along (the score rows' definition_hash).
    definitions = page.one(data_section="definitions").find_all("tr")[1:]
    assert len(definitions) == len({day["definition_hash"] for day in days}) == 1


def test_the_kr_kinds_show_as_the_warehouse_has_them(dashboard_url, db):
    overview = parse(get(dashboard_url + "/").text)
    committed = {
        e.parent.parent.parent.attrs["data-kr-id"]
        for e in overview.find_all(data_field="committed")
    }
    assert (
        committed
        == {
            row["kr_id"]
            for row in rows(
                db,
                "SELECT kr_id FROM kr_scores WHERE as_of = ? AND commitment = 'committed'",
                LAST_DAY.isoformat(),
            )
        }
        == {"tickets-within-2h", "uptime"}
    )
    baseline = overview.one(data_kr_id="web-active-users")
    assert baseline.field("status") == "baseline — not scored"
    assert (baseline.field("score"), baseline.field("target")) == ("–", "not scored")
    band_target = overview.one(data_kr_id="web-session-length").field("target")
    assert band_target == "2m 30s to 5m"  # seconds
    (carried,) = db.execute(
        "SELECT SUM(value) FROM metric_observations WHERE date < '2026-10-01' "
        "AND metric_key = 'github:count=releases;repo=acme/analytics-dashboard'"
    ).fetchone()
    assert carried > 0  # the backfill started in 2026-Q3
    releases = overview.one(data_kr_id="dashboard-releases")
    assert releases.field("carried") == f"{carried:.0f} carried"

    band = parse(get(dashboard_url + "/kr/2026-Q4/web-session-length").text)
    assert band.one("svg", data_chart="history").find_all(data_band="maintain")
    phased = parse(get(dashboard_url + "/kr/2026-Q4/dashboard-paying-customers").text)
    assert [e.text for e in phased.find_all(data_field="checkpoint")] == [
        "checkpoint 2026-10-3110\xa0customers",
        "checkpoint 2026-11-3045\xa0customers",
    ]
    history = phased.one("svg", data_chart="history")
    assert len(history.find_all(data_mark="checkpoint")) == 2
    assert path_points(history.one("path", data_line="expected").attrs["d"]) == 4


def test_the_weekly_view_is_kr_weekly_per_team(dashboard_url, db):
    page = parse(get(dashboard_url + "/weekly").text)
    assert page.one(data_field="week-start").text == "2026-10-19"  # the Monday before Oct 20
    week = rows(
        db, "SELECT * FROM kr_weekly WHERE quarter = '2026-Q4' AND week_start = '2026-10-19'"
    )
    assert len(week) == 19
    by_kr = {row["kr_id"]: row for row in week}
    teams = {e.attrs["data-team"]: e for e in page.find_all("section", data_team=True)}
    assert set(teams) == {row["owner"] for row in week}
    for team, section in teams.items():
        in_table = {e.attrs["data-kr-id"] for e in section.find_all("tr", data_kr_id=True)}
        assert in_table == {row["kr_id"] for row in week if row["owner"] == team}
        for kr_id in in_table:
            row = by_kr[kr_id]
            cells = [c.text.strip() for c in section.one("tr", data_kr_id=kr_id).find_all("td")]
            change = row["score_change"]
            if row["score"] is None:  # a baseline KR: never scored
                assert cells[3] == cells[4] == "–"
                continue
            assert cells[3] == f"{row['score']:.2f}"
            expected = (
                "±0.00"
                if round(change, 2) == 0
                else f"{'+' if change > 0 else '−'}{abs(change):.2f}"
            )
            assert cells[4] == expected
        # Progress made: exactly the KRs whose score went up (by more than rounding).
        progress = section.one(data_question="progress")
        assert {e.attrs["data-kr-id"] for e in progress.find_all("li", data_kr_id=True)} == {
            kr_id for kr_id in in_table if (by_kr[kr_id]["score_change"] or 0) > 0.005
        }
        help_needed = section.one(data_question="help")
        assert {e.attrs["data-kr-id"] for e in help_needed.find_all("li", data_kr_id=True)} == {
            kr_id for kr_id in in_table if by_kr[kr_id]["status"] in ("at_risk", "off_track")
        }


def test_alignment_is_a_tree_by_aligns_to(dashboard_url, db):
    page = parse(get(dashboard_url + "/alignment").text)
    objectives = rows(
        db, "SELECT * FROM objective_scores WHERE quarter = '2026-Q4' AND as_of = '2026-10-20'"
    )
    parents = {row["aligns_to"] for row in objectives if row["aligns_to"]}
    ids = {row["objective_id"] for row in objectives}
    for parent in parents - ids:  # a parent that is no objective is still a node
        node = page.one(data_node=parent)
        children = node.parent.find_all("div", data_objective_id=True)
        assert {c.attrs["data-objective-id"] for c in children} == {
            row["objective_id"] for row in objectives if row["aligns_to"] == parent
        }
    shared = page.one("div", data_objective_id="customer-support")
    kr_owners = {
        row["owner"]
        for row in kr_rows(db, "2026-Q4", "2026-10-20")
        if row["objective_id"] == "customer-support"
    }
    assert {e.attrs["data-owner"] for e in shared.find_all(data_kr_id=True)} == kr_owners
    assert f"shared by {', '.join(sorted(kr_owners))}" in shared.text


def test_quarters_show_final_scores_and_each_teams_calibration(dashboard_url, db):
    page = parse(get(dashboard_url + "/quarters").text)
    summary = rows(db, "SELECT * FROM quarter_summary WHERE quarter = '2026-Q3'")
    q3 = page.one("section", data_quarter="2026-Q3")
    assert "final, 2026-09-30" in q3.text
    for row in summary:
        element = q3.one("tr", data_objective_id=row["objective_id"])
        assert same_score(element.attrs["data-score"], row["final_score"])
        assert element.field("score") == f"{row['final_score']:.2f}"
    assert "in progress" in page.one("section", data_quarter="2026-Q4").text
    # Per team, over finished quarters only (Q3 here): the objectives' target_calibration.
    table = page.one(data_section="calibration")
    for row in summary:
        verdict = table.one("tr", data_team=row["owner"]).field("verdict")
        assert verdict == row["target_calibration"].replace("_", " ")


def test_pages_are_read_only(dashboard_url):
    import requests

    for path in ("/", "/weekly", "/kr/2026-Q4/dau"):
        assert requests.post(dashboard_url + path, timeout=10).status_code == 405
        assert requests.delete(dashboard_url + path, timeout=10).status_code == 405


def test_a_warehouse_with_no_scores_says_so(serve, tmp_path):
    from okr_metrics.pipelines.dashboard.web import create_app

    url = serve(create_app(f"sqlite:///{tmp_path / 'empty.db'}"))
    for path in ("/", "/weekly", "/alignment", "/quarters"):
        response = get(url + path)
        assert response.status_code == 200, path
        assert parse(response.text).one(data_field="as-of").text == ""
    assert "Nothing scored" in get(url + "/").text


def test_observations_are_written_as_their_key_result_writes_values(dashboard_url, db):
    # One series: its daily values in the KR's own format (uptime: shares as percents).
    page = parse(get(dashboard_url + "/kr/2026-Q4/uptime").text)
    observed = rows(
        db,
        "SELECT date, value FROM metric_observations WHERE metric_key = "
        "(SELECT json_extract(metric_keys, '$[0]') FROM kr_definitions "
        " WHERE quarter = '2026-Q4' AND kr_id = 'uptime' ORDER BY last_as_of DESC LIMIT 1) "
        "AND date >= '2026-10-01' AND date <= ? ORDER BY date",
        LAST_DAY.isoformat(),
    )
    assert observed
    kr = rows(
        db, "SELECT * FROM kr_scores WHERE kr_id = 'uptime' AND as_of = ?", LAST_DAY.isoformat()
    )[0]
    fmt = value_format(kr["kr_type"], kr["start"], kr["target"])
    shown = [
        [cell.text for cell in row.find_all("td")]
        for row in page.one(data_section="observations").find_all("tr")[1:]
    ]
    assert {(cells[0], cells[1]) for cells in shown} == {
        (str(row["date"])[:10], fmt(row["value"])) for row in observed
    }
    assert all(cells[1].endswith("%") for cells in shown)
