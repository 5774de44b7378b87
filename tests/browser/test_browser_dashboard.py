"""The dashboard (`okr serve`) and the report (`okr report`) in a real Chromium.

The expected numbers are read from the demo's warehouse with SQL, independently of the
dashboard's own queries; the pages are read back through the HTML contract the
templates keep (`data-objective-id`, `data-kr-id`, `data-field`, `data-chart`, ...).
Every page is saved as a screenshot under test-artifacts/browser/.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from browser_support import (
    KOREAN_KR,
    KOREAN_OBJECTIVE,
    OKR,
    REPO,
    Demo,
    Server,
    browser_required,
    clean_env,
    get,
)

pytestmark = pytest.mark.browser


# --- reading a page ----------------------------------------------------------------------------


def board(page: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Every objective and KR element on the page, with its attributes and shown fields."""
    return page.evaluate(
        """() => {
        const fields = (element) => Object.fromEntries(
            [...element.querySelectorAll('[data-field]')]
                .filter((field) => field.closest('[data-kr-id], [data-objective-id]') === element)
                .map((field) => [field.dataset.field, field.textContent.trim()]));
        const read = (selector, key) => Object.fromEntries(
            [...document.querySelectorAll(selector)].map((element) => [element.dataset[key], {
                score: element.dataset.score, status: element.dataset.status,
                owner: element.dataset.owner, fields: fields(element),
                link: element.querySelector('a[data-link="kr"]')?.getAttribute('href') ?? null,
                trend: !!element.querySelector('svg[data-chart="trend"]'),
            }]));
        return {objectives: read('[data-objective-id]', 'objectiveId'),
                key_results: read('[data-kr-id]', 'krId')};
    }"""
    )


def raw_score(attribute: str | None) -> float | None:
    return None if attribute in (None, "") else float(attribute)


def score_of(row: dict[str, Any]) -> float | None:
    score = row["score"]
    return None if score is None or (isinstance(score, float) and math.isnan(score)) else score


DURATION_PART = re.compile(r"(\d+)([dhms])")
UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
NUMBER = re.compile(r"[-−]?\d[\d,]*(?:\.\d+)?")


def shown_number(text: str) -> tuple[float, float] | None:
    """A number as the page writes it ('12,840', '62%', '1.25M', '6m 30s'), and how far
    from the exact value its rounding may be; None for no number (a dash)."""
    text = text.strip()
    if re.fullmatch(r"(\d+[dhms]\s*)+", text):
        parts = DURATION_PART.findall(text)
        seconds = sum(int(amount) * UNIT_SECONDS[unit] for amount, unit in parts)
        return seconds, UNIT_SECONDS[parts[-1][1]]
    match = NUMBER.search(text)
    if match is None:
        return None
    digits = match.group().replace(",", "").replace("−", "-")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    half_unit = 0.5 * 10**-decimals
    rest = text[match.end() :].lstrip()
    scale = {"%": 0.01, "K": 1e3, "k": 1e3, "M": 1e6, "B": 1e9}.get(rest[:1], 1.0)
    return float(digits) * scale, half_unit * scale + 1e-12


def assert_shows(text: str, value: float | None, what: str) -> None:
    shown = shown_number(text)
    if value is None:
        assert shown is None, f"{what}: shows {text!r} for no data"
        return
    assert shown is not None, f"{what}: shows {text!r}, expected {value}"
    number, tolerance = shown
    assert abs(number - value) <= tolerance, f"{what}: shows {text!r}, expected {value}"


def assert_board_matches(page: Any, demo: Demo, as_of: date | None = None) -> None:
    """Every objective and KR of the day is on the page with its score and status, and no other."""
    objectives, key_results = demo.objectives(as_of), demo.key_results(as_of)
    shown = board(page)
    assert set(shown["objectives"]) == set(objectives)
    assert set(shown["key_results"]) == set(key_results)
    for objective_id, row in objectives.items():
        element = shown["objectives"][objective_id]
        assert raw_score(element["score"]) == pytest.approx(score_of(row)), objective_id
        assert element["status"] == row["status"], objective_id
        assert_shows(element["fields"]["score"], score_of(row), f"objective {objective_id} score")
    for kr_id, row in key_results.items():
        element = shown["key_results"][kr_id]
        assert raw_score(element["score"]) == pytest.approx(score_of(row)), kr_id
        assert element["status"] == row["status"], kr_id
        assert element["owner"] == row["owner"], kr_id
        fields = element["fields"]
        assert_shows(fields["score"], score_of(row), f"KR {kr_id} score")
        assert_shows(fields["value"], row["value"], f"KR {kr_id} value")
        words = row["status"].replace("_", " ")
        assert words in fields["status"].lower().replace("_", " "), (kr_id, fields["status"])
        assert element["trend"], f"KR {kr_id} has no trend chart"
        assert element["link"], f"KR {kr_id} has no link to its page"


def as_of_shown(page: Any) -> str:
    return page.locator('[data-field="as-of"]').first.inner_text().strip()


def apply_filter(page: Any) -> None:
    with page.expect_navigation():
        page.click('form[data-filter] [data-action="apply"]')


def change_filter(page: Any, change: Callable[[], None]) -> None:
    """Change a field of the filter form and wait for the page it leads to: the form may
    submit itself on change (a script); where it does not, the Apply button does."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        with page.expect_navigation(timeout=5_000):
            change()
    except PlaywrightTimeout:
        apply_filter(page)


# --- the live dashboard ------------------------------------------------------------------------


def test_overview_shows_every_objective_and_key_result(page, server: Server, demo: Demo):
    response = page.goto(f"{server.url}/")
    assert response.status == 200
    assert as_of_shown(page) == demo.newest.isoformat()
    assert demo.key_results(), "the demo's warehouse has no KRs"
    assert {row["as_of"] for row in demo.key_results().values()} == {demo.newest}
    assert_board_matches(page, demo)


def test_a_key_result_page_draws_its_history(page, server: Server, demo: Demo, artifacts: Path):
    # The KR with the most scored days, reached by clicking its link on the overview.
    days = demo.rows(
        "SELECT kr_id, COUNT(value) AS days FROM kr_scores WHERE quarter = :q "
        "GROUP BY kr_id ORDER BY days DESC, kr_id LIMIT 1",
        q=demo.quarter,
    )[0]
    page.goto(f"{server.url}/")
    with page.expect_navigation():
        page.click(f'[data-kr-id="{days["kr_id"]}"] a[data-link="kr"]')
    assert urlparse(page.url).path == f"/kr/{demo.quarter}/{days['kr_id']}"
    chart = page.locator('svg[data-chart="history"]')
    assert chart.count() == 1
    drawn = chart.evaluate(
        """(svg) => {
        // The longest line drawn (a path or a polyline) and how many points it passes.
        let length = 0, vertices = 0;
        for (const line of svg.querySelectorAll('path, polyline')) {
            const points = line.tagName === 'path'
                ? (line.getAttribute('d').match(/[MLHVml]/g) || []).length
                : line.points.numberOfItems;
            if (points > vertices) { vertices = points; length = line.getTotalLength(); }
        }
        const box = svg.getBoundingClientRect();
        return {length, vertices, width: box.width, height: box.height};
    }"""
    )
    assert drawn["width"] > 200 and drawn["height"] > 80, drawn
    # A line through the quarter's days: a point for each day with a value, visibly long.
    assert drawn["vertices"] >= days["days"], drawn
    assert drawn["length"] > drawn["width"] / 2, drawn
    for section in ("observations", "rejected", "sources", "checkins", "definitions"):
        assert page.locator(f'[data-section="{section}"]').count() == 1, section
    # The observations behind it: every daily value of its series this quarter, one row each.
    keys = json.loads(
        demo.rows(
            "SELECT metric_keys FROM kr_definitions WHERE quarter = :q AND kr_id = :kr "
            "ORDER BY last_as_of DESC LIMIT 1",
            q=demo.quarter,
            kr=days["kr_id"],
        )[0]["metric_keys"]
    )
    observed = demo.rows(
        "SELECT COUNT(*) AS n FROM metric_observations "
        "WHERE metric_key IN :keys AND date >= :start AND date <= :end",
        keys=tuple(keys),
        start=demo.start.isoformat(),
        end=demo.newest.isoformat(),
    )[0]["n"]
    assert observed > 0
    rows = page.locator('[data-section="observations"] tbody tr')
    assert rows.count() == observed


def test_a_key_result_page_shows_its_check_in_notes(page, server: Server, demo: Demo):
    checked_in = demo.rows(
        "SELECT kr_id, date, note FROM checkins WHERE quarter = :q AND date <= :end "
        "ORDER BY kr_id, date",
        q=demo.quarter,
        end=demo.newest.isoformat(),
    )
    assert checked_in, "the demo wrote no check-ins"
    kr_id = checked_in[0]["kr_id"]
    notes = [row for row in checked_in if row["kr_id"] == kr_id]
    page.goto(f"{server.url}/kr/{demo.quarter}/{kr_id}")
    section = page.locator('[data-section="checkins"]')
    assert section.locator("tbody tr").count() == len(notes)
    text = section.inner_text()
    for row in notes:
        assert str(row["date"])[:10] in text
        assert (row["note"] or "") in text


def test_the_team_filter_narrows_the_page(page, server: Server, demo: Demo):
    # A team sees the KRs it owns and every KR of the objectives it owns.
    key_results, objectives = demo.key_results(), demo.objectives()
    teams = {row["owner"] for row in key_results.values()} | {
        row["owner"] for row in objectives.values()
    }
    teams.discard(None)

    def of_team(team: str) -> set[str]:
        return {
            kr_id
            for kr_id, row in key_results.items()
            if team in (row["owner"], objectives[row["objective_id"]]["owner"])
        }

    # The team that sees the most KRs while some are still left out.
    team = min(
        (name for name in teams if len(of_team(name)) < len(key_results)),
        key=lambda name: (-len(of_team(name)), name),
    )
    page.goto(f"{server.url}/")
    select = page.locator('form[data-filter] select[name="team"]')
    options = select.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
    assert "" in options and teams <= set(options)
    change_filter(page, lambda: select.select_option(team))
    assert parse_qs(urlparse(page.url).query).get("team") == [team]
    assert select.input_value() == team
    shown = board(page)
    assert set(shown["key_results"]) == of_team(team)
    assert {key_results[kr_id]["objective_id"] for kr_id in of_team(team)} == set(
        shown["objectives"]
    )
    for kr_id, element in shown["key_results"].items():
        assert raw_score(element["score"]) == pytest.approx(score_of(key_results[kr_id]))
    # Back to every team.
    change_filter(page, lambda: select.select_option(""))
    assert set(board(page)["key_results"]) == set(key_results)


def test_as_of_shows_the_board_as_it_stood_that_day(browser, server: Server, demo: Demo):
    earlier = max(demo.newest - timedelta(days=14), demo.start)
    then, now = demo.key_results(earlier), demo.key_results()
    assert then and any(score_of(then[kr_id]) != score_of(now[kr_id]) for kr_id in then), (
        "the demo's scores did not change in two weeks: the test would prove nothing"
    )
    # Without scripts, as a plain form: the date typed in, then the Apply button.
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/")
        page.fill('form[data-filter] input[name="as_of"]', earlier.isoformat())
        apply_filter(page)
        assert parse_qs(urlparse(page.url).query).get("as_of") == [earlier.isoformat()]
        assert as_of_shown(page) == earlier.isoformat()
        assert_board_matches(page, demo, earlier)
    finally:
        context.close()


def test_every_page_renders_and_is_saved_as_a_screenshot(
    page, server: Server, demo: Demo, artifacts: Path
):
    problems: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            elsewhere.append(request.url) if not request.url.startswith(server.url) else None
        ),
    )
    kr_id = sorted(demo.key_results())[0]
    paths = {
        "overview": "/",
        "kr": f"/kr/{demo.quarter}/{kr_id}",
        "weekly": "/weekly",
        "alignment": "/alignment",
        "quarters": "/quarters",
    }
    for name, path in paths.items():
        response = page.goto(f"{server.url}{path}")
        assert response.status == 200, path
        assert page.locator("form[data-filter]").count() == 1, path
        assert as_of_shown(page) == demo.newest.isoformat(), path
        shot = artifacts / f"{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, f"{shot} is nearly empty"
    assert problems == []
    assert elsewhere == [], "the dashboard loads nothing from another origin"


# --- the report --------------------------------------------------------------------------------


def test_the_report_opens_offline_with_every_key_result(
    browser, demo: Demo, tmp_path: Path, artifacts: Path
):
    result = subprocess.run(
        [str(OKR), "report"],
        cwd=tmp_path,
        env=clean_env(OKR_WAREHOUSE_URL=demo.url, OKR_DEFS=str(REPO / "okr_defs")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = tmp_path / ".okr" / "reports" / f"{demo.quarter}.html"
    assert report.is_file(), f"no {report}: {result.stdout}{result.stderr}"
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    left: list[str] = []

    def only_the_file(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_file)
    try:
        page = context.new_page()
        page.on(
            "request",
            lambda request: (
                left.append(request.url) if not request.url.startswith(("file:", "data:")) else None
            ),
        )
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        key_results = demo.key_results()
        shown = board(page)
        assert set(shown["key_results"]) == set(key_results)
        text = page.inner_text("body")
        for kr_id, row in key_results.items():
            assert row["kr_title"] in text, kr_id
            assert raw_score(shown["key_results"][kr_id]["score"]) == pytest.approx(score_of(row))
        assert page.locator('svg[data-chart="trend"]').count() == len(key_results)
        page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    finally:
        context.close()
    assert left == [], "the report asked for something outside the file"


# --- the token ---------------------------------------------------------------------------------


def test_with_a_token_every_page_needs_it(browser, token_server: Server, korean_demo: Demo):
    key_results = korean_demo.key_results()
    titles = [row["kr_title"] for row in key_results.values()]
    titles += [row["title"] for row in korean_demo.objectives().values()]
    kr_id = sorted(key_results)[0]
    paths = ["/", f"/kr/{korean_demo.quarter}/{kr_id}", "/weekly", "/alignment", "/quarters"]
    assert token_server.token
    bearer = {"Authorization": f"Bearer {token_server.token}"}
    for path in paths:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            status, body = get(token_server.url + path, headers)
            assert status == 401, (path, headers)
            leaked = [word for word in [*key_results, *titles] if word in body]
            assert leaked == [], f"{path} without the token shows {leaked}"
            assert "data-" not in body and "<form" not in body, f"{path}: a page came with the 401"
        status, body = get(token_server.url + path, bearer)
        assert status == 200, path
    status, body = get(token_server.url + "/", bearer)
    assert all(f'data-kr-id="{kr_id}"' in body for kr_id in key_results)
    assert token_server.token not in body
    assert get(token_server.url + "/healthz")[0] == 200
    assert get(token_server.url + "/login")[0] == 200

    # In the browser: a wrong token opens nothing; the right one sets a cookie that opens
    # every page, and that cookie cannot be made up.
    context = browser.new_context()
    try:
        page = context.new_page()
        assert page.goto(f"{token_server.url}/").status == 401
        page.goto(f"{token_server.url}/login")
        page.fill('input[name="token"]', "not-the-token")
        with page.expect_navigation():
            page.press('input[name="token"]', "Enter")
        assert page.goto(f"{token_server.url}/").status == 401
        page.goto(f"{token_server.url}/login")
        page.fill('input[name="token"]', token_server.token)
        with page.expect_navigation():
            page.press('input[name="token"]', "Enter")
        assert context.cookies(), "logging in set no cookie"
        for path in paths:
            assert page.goto(token_server.url + path).status == 200, path
        page.goto(f"{token_server.url}/")
        assert set(board(page)["key_results"]) == set(key_results)
        assert token_server.token not in page.content()
        cookies = context.cookies()
    finally:
        context.close()
    forged = browser.new_context()
    try:
        forged.add_cookies([{**cookie, "value": "0" * len(cookie["value"])} for cookie in cookies])
        assert forged.new_page().goto(f"{token_server.url}/").status == 401
    finally:
        forged.close()


# --- Korean titles -----------------------------------------------------------------------------


def hangul_font_installed() -> bool:
    try:
        listed = subprocess.run(
            ["fc-list", ":lang=ko", "family"], capture_output=True, text=True, timeout=30
        ).stdout
    except OSError:
        return False
    return bool(listed.strip())


def test_korean_titles_render_as_glyphs_not_boxes(
    browser, token_server: Server, korean_demo: Demo, artifacts: Path
):
    if not hangul_font_installed():
        reason = "no Hangul font (fc-list :lang=ko): install fonts-noto-cjk (.ci/chromium.sh)"
        if browser_required():
            pytest.fail(f"{reason} (OKR_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(reason)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"Authorization": f"Bearer {token_server.token}"},
    )
    try:
        page = context.new_page()
        page.goto(f"{token_server.url}/")
        page.screenshot(path=str(artifacts / "korean.png"), full_page=True)
        for selector, title in (
            (f'[data-objective-id="{KOREAN_OBJECTIVE[0]}"]', KOREAN_OBJECTIVE[1]),
            (f'[data-kr-id="{KOREAN_KR[0]}"]', KOREAN_KR[1]),
        ):
            element = page.locator(selector).get_by_text(title, exact=True).first.element_handle()
            element.scroll_into_view_if_needed()
            # The drawn text's own width (the element may be a full-width block).
            width, size = element.evaluate(
                """(e) => { const range = document.createRange(); range.selectNodeContents(e);
                    return [range.getBoundingClientRect().width,
                            parseFloat(getComputedStyle(e).fontSize)]; }"""
            )
            assert width > size * len(title.replace(" ", "")) * 0.5, (title, width, size)
            # The same element with each Hangul letter swapped for one no font has (U+F0000,
            # drawn as the missing-glyph box): when Hangul is drawn as boxes, the pictures match.
            glyphs = element.screenshot()
            element.evaluate(
                """(e) => { const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
                    for (let node; (node = walker.nextNode());)
                        node.data = node.data.replace(/\\p{Script=Hangul}/gu, '\\u{F0000}'); }"""
            )
            boxes = element.screenshot()
            assert glyphs != boxes, f"{title!r} renders as missing-glyph boxes"
    finally:
        context.close()
