"""The dashboard's guard and what reaches a page: the token, escaping, Unicode, secrets."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime

import pytest
import requests
from pagetools import get, parse

from okr_metrics.pipelines.dashboard.web import COOKIE_NAME, cookie_value, create_app
from okr_metrics.pipelines.orchestration.resources import SANDBOX_TOKEN, SANDBOX_USER
from okr_metrics.pipelines.settings import Settings

TOKEN = "dash-7c1f0e2b9a"
PAGES = ("/", "/kr/2026-Q4/dau", "/weekly", "/alignment", "/quarters")


@pytest.fixture
def guarded(serve, built_warehouse) -> str:
    return serve(create_app(f"sqlite:///{built_warehouse}", token=TOKEN))


def test_without_the_token_every_page_is_a_bare_401(guarded):
    for path in (*PAGES, "/kr/2026-Q4/no-such-kr", "/nowhere"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = get(guarded + path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.text == "401 Unauthorized\n"
            assert response.headers["www-authenticate"].startswith("Bearer")
    wrong_cookie = get(guarded + "/", cookies={COOKIE_NAME: cookie_value("not-the-token")})
    assert wrong_cookie.status_code == 401
    # The token itself is no cookie: the cookie holds a keyed hash of it.
    assert get(guarded + "/", cookies={COOKIE_NAME: TOKEN}).status_code == 401


def test_the_bearer_token_opens_every_page(guarded):
    for path in PAGES:
        response = get(guarded + path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, path
        assert TOKEN not in response.text


def test_login_sets_an_http_only_strict_cookie(guarded):
    assert get(guarded + "/healthz").text == "ok"
    form = parse(get(guarded + "/login").text)
    assert form.one("input", name="token").attrs["type"] == "password"
    session = requests.Session()
    refused = session.post(guarded + "/login", data={"token": "wrong"}, allow_redirects=False)
    assert refused.status_code == 401 and COOKIE_NAME not in refused.cookies
    accepted = session.post(
        guarded + "/login", data={"token": TOKEN, "next": "/weekly"}, allow_redirects=False
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/weekly"
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    assert session.get(guarded + "/weekly", timeout=30).status_code == 200
    # Only a path on this site may follow a login.
    elsewhere = requests.post(
        guarded + "/login",
        data={"token": TOKEN, "next": "//evil.example/"},
        allow_redirects=False,
        timeout=30,
    )
    assert elsewhere.headers["location"] == "/"


def test_without_a_token_configured_no_page_asks_for_one(dashboard_url):
    assert get(dashboard_url + "/").status_code == 200
    assert "needs no token" in get(dashboard_url + "/login").text


def test_the_token_is_in_no_repr():
    settings = Settings.from_env({"OKR_DASHBOARD_TOKEN": TOKEN})
    assert settings.dashboard_token == TOKEN
    assert TOKEN not in repr(settings) and "dashboard_token=set" in repr(settings)
    app = create_app("sqlite://", token=TOKEN)
    assert TOKEN not in repr(app.user_middleware) and TOKEN not in repr(app)


def test_pages_load_nothing_from_elsewhere(dashboard_url):
    for path in PAGES:
        response = get(dashboard_url + path)
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert "<link" not in html and "<script src" not in html and "url(" not in html
        assert "http://" not in html and "https://" not in html
        # The one script is inline, and carries the nonce the policy allows.
        nonce = policy.split("'nonce-")[1].split("'")[0]
        assert html.count("<script") == 1 and f'<script nonce="{nonce}">' in html


def insert(db_path, table: str, rows: list[dict]) -> None:
    with sqlite3.connect(db_path) as connection:
        for row in rows:
            names = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            connection.execute(
                f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values())
            )


def test_titles_and_notes_are_text_and_hangul_renders(serve, warehouse_copy):
    with sqlite3.connect(warehouse_copy) as connection:
        connection.execute(
            "UPDATE kr_scores SET kr_title = '<script>alert(1)</script>' WHERE kr_id = 'dau'"
        )
        connection.execute(
            "UPDATE objective_scores SET title = '모바일 앱 참여도 높이기' "
            "WHERE objective_id = 'mobile-engagement'"
        )
    insert(
        warehouse_copy,
        "checkins",
        [
            {
                "quarter": "2026-Q4",
                "kr_id": "dau",
                "date": "2026-10-19",
                "value": 11000.0,
                "note": "<img src=x onerror=alert(2)> 주간 활성 사용자 증가",
                "file": "okr_defs/checkins/2026-Q4.csv",
                "line": 40,
                "run_id": "test",
                "recorded_at": "2026-10-20 00:00:00",
            }
        ],
    )
    url = serve(create_app(f"sqlite:///{warehouse_copy}"))
    for path in ("/", "/kr/2026-Q4/dau", "/weekly", "/alignment"):
        response = get(url + path)
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        html = response.content.decode("utf-8")
        assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        page = parse(html)
        assert "<script>alert(1)</script>" in page.text  # shown as text
        if path != "/weekly":  # the weekly view names KRs, not objectives
            assert "모바일 앱 참여도 높이기" in page.text, path
    kr_page = parse(get(url + "/kr/2026-Q4/dau").text)
    notes = kr_page.one(data_section="checkins").text
    assert "<img src=x onerror=alert(2)> 주간 활성 사용자 증가" in notes
    weekly = parse(get(url + "/weekly").text)
    assert "주간 활성 사용자 증가" in weekly.one("section", data_team="growth").text


def test_no_source_secret_reaches_a_page(dashboard_url):
    """The run used the sandbox's placeholder credentials; none of them is on any page."""
    for path in PAGES:
        html = get(dashboard_url + path).text
        assert SANDBOX_TOKEN not in html and SANDBOX_USER not in html, path


def test_the_kr_page_shows_the_rows_behind_the_kr(serve, warehouse_copy):
    """kr_definitions, checkins and a rejected row written for one KR, read back on its page."""
    key = "github:count=releases;repo=acme/mobile-app"
    now = datetime(2026, 10, 20, tzinfo=UTC).isoformat(sep=" ")
    with sqlite3.connect(warehouse_copy) as connection:
        (hash_now,) = connection.execute(
            "SELECT DISTINCT definition_hash FROM kr_scores WHERE kr_id = 'mobile-releases' "
            "AND quarter = '2026-Q4'"
        ).fetchone()
        observations = connection.execute(
            "SELECT date, value FROM metric_observations WHERE metric_key = ? "
            "AND date BETWEEN '2026-10-01' AND '2026-10-20' ORDER BY date DESC",
            (key,),
        ).fetchall()
        github_runs = connection.execute(
            "SELECT COUNT(*) FROM source_runs WHERE source = 'github' "
            "AND window_start <= '2026-10-20' AND window_end >= '2026-10-01'"
        ).fetchone()[0]
    definition = {
        "id": "mobile-releases",
        "title": "Ship 6 mobile app releases",
        "type": "increase",
        "start": 0,
        "target": 6,
        "metric": {"source": "github", "repo": "acme/mobile-app", "count": "releases"},
    }
    common = {
        "quarter": "2026-Q4",
        "kr_id": "mobile-releases",
        "objective_id": "mobile-engagement",
        "owner": "mobile",
        "kr_type": "increase",
        "start": 0.0,
        "metric_keys": json.dumps([key]),
        "run_id": "test",
        "computed_at": now,
    }
    insert(
        warehouse_copy,
        "kr_definitions",
        [
            {
                **common,
                "definition_hash": "0ld0ld0ld0ld0ld0",
                "kr_title": "Ship 5 mobile app releases",
                "target": 5.0,
                "definition": json.dumps(
                    {**definition, "title": "Ship 5 mobile app releases", "target": 5}
                ),
                "first_as_of": "2026-10-01",
                "last_as_of": "2026-10-09",
            },
            {
                **common,
                "definition_hash": hash_now,
                "kr_title": "Ship 6 mobile app releases",
                "target": 6.0,
                "definition": json.dumps(definition),
                "first_as_of": "2026-10-10",
                "last_as_of": "2026-10-20",
            },
        ],
    )
    insert(
        warehouse_copy,
        "rejected_observations",
        [
            {
                "source": "github",
                "metric_key": key,
                "date": "2026-10-12",
                "raw_value": "-3",
                "expectation": "expect_column_values_to_be_between",
                "reason": "a count is never negative: got '-3' on 2026-10-12",
                "window_start": "2026-10-12",
                "window_end": "2026-10-12",
                "collected_at": now,
                "run_id": "test",
            }
        ],
    )
    insert(
        warehouse_copy,
        "checkins",
        [
            {
                "quarter": "2026-Q4",
                "kr_id": "mobile-releases",
                "date": day,
                "value": value,
                "note": note,
                "file": "okr_defs/checkins/2026-Q4.csv",
                "line": line,
                "run_id": "test",
                "recorded_at": now,
            }
            for day, value, note, line in (
                ("2026-10-05", 1.0, "first release out", 2),
                ("2026-10-15", 3.0, "release train on a weekly beat", 3),
            )
        ],
    )
    url = serve(create_app(f"sqlite:///{warehouse_copy}"))
    page = parse(get(url + "/kr/2026-Q4/mobile-releases").text)
    shown = page.one(data_section="observations").find_all("tr")[1:]
    assert [(r.find_all("td")[0].text, r.find_all("td")[1].text) for r in shown] == [
        (day, f"{value:.0f}") for day, value in observations
    ]
    assert len(shown) == 20
    rejected = page.one(data_section="rejected").text
    assert "a count is never negative: got '-3' on 2026-10-12" in rejected
    sources = page.one(data_section="sources").find_all("tr")[1:]
    assert len(sources) == github_runs >= 1
    assert all(row.find_all("td")[1].text == "github" for row in sources)
    notes = page.one(data_section="checkins").find_all("tr")[1:]
    assert [row.find_all("td")[2].text for row in notes] == [
        "release train on a weekly beat",
        "first release out",
    ]
    history = page.one(data_section="definitions")
    changed = history.find_all("tr")[2].find_all("td")[2].text
    assert "target: 5 → 6" in changed and "title: Ship 5 mobile app releases → Ship 6" in changed
    # As of Oct 9, only what was known then: the first definition, the first check-in.
    then = parse(get(url + "/kr/2026-Q4/mobile-releases?as_of=2026-10-09").text)
    assert len(then.one(data_section="definitions").find_all("tr")[1:]) == 1
    assert len(then.one(data_section="checkins").find_all("tr")[1:]) == 1
    assert len(then.one(data_section="observations").find_all("tr")[1:]) == 9
    assert "got '-3'" not in then.one(data_section="rejected").text


def test_a_kr_newly_stale_this_week_is_a_blocker(serve, warehouse_copy):
    with sqlite3.connect(warehouse_copy) as connection:
        connection.execute(
            "UPDATE kr_scores SET stale = 1, last_observed = '2026-10-18' "
            "WHERE kr_id = 'mobile-releases' AND as_of >= '2026-10-19'"
        )
    url = serve(create_app(f"sqlite:///{warehouse_copy}"))
    weekly = parse(get(url + "/weekly").text)
    blockers = weekly.one("section", data_team="mobile").one(data_question="blockers")
    item = blockers.one("li", data_kr_id="mobile-releases")
    assert "newly stale" in item.text and "2026-10-18" in item.text
    overview = parse(get(url + "/").text)
    badge = overview.one(data_kr_id="mobile-releases").field("stale")
    assert badge == "stale · last data 2026-10-18"
    assert date(2026, 10, 18)  # the day the badge names
