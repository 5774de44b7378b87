"""Alerts: transitions worked out by hand, recorded once, delivered once to a real HTTP receiver.

The pure cases feed `detect_transitions` a KR's daily rows; the warehouse cases record
and claim on SQLite and PostgreSQL; the end-to-end case runs the `okr` command (real
Dagster runs) on check-in KRs whose statuses follow by hand from the scoring rules, with
a pytest-httpserver receiver as the webhook.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey
from sqlalchemy import text
from werkzeug import Request, Response

from okr_metrics.pipelines.cli.main import EXIT_OK, main
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.jobs.alerts import (
    deliver_alerts,
    not_announced,
    post_webhook,
    quarter_transitions,
    record_alerts,
    slack_message,
)
from okr_metrics.pipelines.orchestration.runs import dagster_instance
from okr_metrics.pipelines.scoring.alerts import AlertWatch, Bound, detect_transitions
from okr_metrics.pipelines.settings import Settings, SettingsError
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
Q4 = Quarter(2026, 4)
DAY_1 = date(2026, 10, 1)
SECRET = "T0SECRET/B0SECRET/xoxb-alert-secret"


def day(n: int) -> date:
    return DAY_1 + timedelta(days=n - 1)


def history(kr_id: str = "k", **columns: list) -> pd.DataFrame:
    """One KR's rows from 10-01 on: a column per keyword (status, score, value, p_achieve)."""
    length = len(next(iter(columns.values())))
    frame = pd.DataFrame(
        {
            "quarter": "2026-Q4",
            "kr_id": kr_id,
            "objective_id": "o",
            "kr_title": f"KR {kr_id}",
            "owner": "team",
            "as_of": [day(n) for n in range(1, length + 1)],
            "target": 100.0,
            "last_observed": [day(n) for n in range(1, length + 1)],
            "stale": False,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    if "status" not in frame:
        frame["status"] = "on_track"
    return frame


def found(frame: pd.DataFrame) -> list[tuple]:
    return [
        (row.kind, row.as_of, row.old_state, row.new_state) for row in frame.itertuples(index=False)
    ]


STATUS_ONLY = AlertWatch(status_changes=True, bounds=(), dwell_days=2)

# -- transitions, by hand -------------------------------------------------------------------


def test_a_status_change_is_one_alert_once_it_has_held_two_days():
    rows = history(status=["on_track", "on_track", "at_risk", "at_risk", "at_risk"])
    assert found(detect_transitions(rows, {"k": STATUS_ONLY})) == [
        ("status_changed", day(4), "on_track", "at_risk"),
    ]


def test_a_flap_across_a_boundary_alerts_only_when_it_holds():
    statuses = ["on_track", "on_track", "at_risk", "on_track", "at_risk", "at_risk", "on_track"]
    rows = history(status=statuses)
    # on_track holds from day 2; at_risk on day 3 and on_track on day 7 last a day each.
    assert found(detect_transitions(rows, {"k": STATUS_ONLY})) == [
        ("status_changed", day(6), "on_track", "at_risk"),
    ]
    one_day = AlertWatch(dwell_days=1)
    assert [t[1:] for t in found(detect_transitions(rows, {"k": one_day}))] == [
        (day(3), "on_track", "at_risk"),
        (day(4), "at_risk", "on_track"),
        (day(5), "on_track", "at_risk"),
        (day(7), "at_risk", "on_track"),
    ]
    # Nothing lasts three days: no state is ever held.
    three_days = AlertWatch(dwell_days=3)
    assert found(detect_transitions(rows, {"k": three_days})) == []


def test_back_to_on_track_and_achieved_are_alerts_but_no_data_days_are_skipped():
    statuses = ["no_data", "no_data", "on_track", "on_track", "off_track", "off_track"]
    statuses += ["no_data", "on_track", "on_track", "achieved", "achieved"]
    rows = history(status=statuses)
    # Days 1-2 have no data; day 3-4 hold on_track (no alert: nothing to tell); the
    # no_data day 7 neither breaks nor makes a streak.
    assert found(detect_transitions(rows, {"k": STATUS_ONLY})) == [
        ("status_changed", day(6), "on_track", "off_track"),
        ("status_changed", day(9), "off_track", "on_track"),
        ("status_changed", day(11), "on_track", "achieved"),
    ]


def test_a_kr_that_starts_at_risk_alerts_from_no_earlier_state():
    rows = history(status=["off_track", "off_track", "off_track"])
    assert found(detect_transitions(rows, {"k": STATUS_ONLY})) == [
        ("status_changed", day(2), None, "off_track"),
    ]


def test_thresholds_on_score_and_value_alert_on_crossing_and_on_recovery():
    rows = history(
        score=[0.5, 0.45, 0.35, 0.3, 0.42, 0.41, 0.2],
        value=[10.0, 12.0, 30.0, 31.0, 29.0, 35.0, 36.0],
    )
    watch = AlertWatch(
        status_changes=False,
        bounds=(
            Bound("threshold", "score", "below", 0.4),
            Bound("threshold", "value", "above", 30.0),
        ),
    )
    got = detect_transitions(rows, {"k": watch})
    assert found(got) == [
        # score >= 0.4 held from day 2 (no alert), < 0.4 on days 3-4, back on 5-6, 0.2 once.
        ("threshold", day(4), "score >= 0.4", "score < 0.4"),
        # value 31 > 30 on day 4 only (30 is not above 30), then 35 and 36 on days 6-7.
        ("threshold", day(6), "score < 0.4", "score >= 0.4"),
        ("threshold", day(7), "value <= 30", "value > 30"),
    ]
    assert list(got["rule"]) == ["score_below 0.4", "score_below 0.4", "value_above 30"]
    assert list(got["value"]) == [31.0, 35.0, 36.0]


def test_forecast_miss_reads_p_achieve_and_skips_the_days_without_it():
    watch = AlertWatch(
        status_changes=False, bounds=(Bound("forecast_miss", "p_achieve", "below", 0.3),)
    )
    rows = history(p_achieve=[0.5, 0.45, None, 0.25, 0.2, 0.31, None, 0.29])
    assert found(detect_transitions(rows, {"k": watch})) == [
        ("forecast_miss", day(5), "p_achieve >= 0.3", "p_achieve < 0.3"),
    ]
    # Before p_achieve is computed the column is null: no alert, no error.
    unset = history(p_achieve=[None] * 5)
    assert detect_transitions(unset, {"k": watch}).empty
    without_column = history(status=["at_risk"] * 3)
    assert detect_transitions(without_column, {"k": watch}).empty


def test_the_reason_names_the_days_and_the_observations():
    rows = history(status=["on_track", "at_risk", "at_risk"], value=[40.0, 41.0, 42.0])
    rows["progress"], rows["expected_progress"] = 0.42, 0.75
    rows.loc[2, "last_observed"] = day(2)
    rows.loc[2, "stale"] = True
    (reason,) = detect_transitions(rows, {"k": STATUS_ONLY}, {"k": ["github:repo=a/b"]})["reason"]
    assert reason == (
        "at_risk on 2026-10-02..2026-10-03 (2 days): value 42 of target 100, progress 0.42 "
        "against 0.75 expected; from github:repo=a/b through 2026-10-02 (stale: the source "
        "failed, the last value is carried)"
    )


def test_the_same_history_gives_the_same_transitions_whatever_the_kr_order():
    a = history("a", status=["on_track", "off_track", "off_track"])
    b = history("b", status=["at_risk", "at_risk", "on_track"])
    watches = {"a": STATUS_ONLY, "b": STATUS_ONLY}
    first = detect_transitions(pd.concat([a, b]), watches)
    second = detect_transitions(pd.concat([b, a]).sample(frac=1, random_state=3), watches)
    pd.testing.assert_frame_equal(first, second)
    assert list(first["kr_id"]) == ["b", "a"]  # by day: b held at_risk on 10-02, a on 10-03


# -- the YAML -------------------------------------------------------------------------------

QUARTER_YAML = """\
quarter: 2026-Q4
alerts: {{dwell_days: 3, score_below: 0.4}}
alert_routes: {{mobile: {route}}}
objectives:
  - id: launch
    title: Launch the app
    owner: mobile
    key_results:
      - id: adoption
        title: Adoption from 0 to 100
        type: increase
        start: 0
        target: 100
        alerts: {alerts}
        metric: {{source: manual, aggregate: latest}}
      - id: released
        title: Released
        owner: web
        type: milestone
        metric: {{source: manual, aggregate: latest}}
"""


def load(
    folder: Path, route: str = "OKR_ALERT_WEBHOOK_URL_MOBILE", alerts: str = "{dwell_days: 1}"
):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "2026-Q4.yaml"
    path.write_text(QUARTER_YAML.format(route=route, alerts=alerts), encoding="utf-8")
    return path, load_definitions(path)


def test_a_kr_block_overrides_the_file_default_key_by_key(tmp_path):
    _, definitions = load(tmp_path, alerts="{dwell_days: 1, p_achieve_below: null}")
    okr_file = definitions.for_quarter(Q4)
    adoption, released = (kr for _, kr in okr_file.key_results)
    own, default = okr_file.alert_rules(adoption), okr_file.alert_rules(released)
    assert (own.dwell_days, own.score_below, own.p_achieve_below) == (1, 0.4, None)
    assert (default.dwell_days, default.score_below, default.p_achieve_below) == (3, 0.4, 0.3)
    assert okr_file.alert_route("mobile") == "OKR_ALERT_WEBHOOK_URL_MOBILE"
    assert okr_file.alert_route("web") == "OKR_ALERT_WEBHOOK_URL"
    # Alerts do not change what a KR scores: the definition hash ignores them.
    _, plain = load(tmp_path / "plain", alerts="{}")
    assert plain.for_quarter(Q4).definition_hash(
        next(kr for _, kr in plain.for_quarter(Q4).key_results)
    ) == okr_file.definition_hash(adoption)


@pytest.mark.parametrize(
    ("route", "alerts", "line", "message"),
    [
        ("OKR_ALERT_WEBHOOK_URL_MOBILE", "{dwell_days: 0}", 14,
         "objectives[launch].key_results[adoption].alerts.dwell_days: Input should be greater than or equal to 1"),
        ("OKR_ALERT_WEBHOOK_URL_MOBILE", "{score_below: 1.5}", 14,
         "objectives[launch].key_results[adoption].alerts.score_below: Input should be less than or equal to 1"),
        ("OKR_ALERT_WEBHOOK_URL_MOBILE", "{score_bellow: 0.4}", 14,
         "objectives[launch].key_results[adoption].alerts.score_bellow: unknown key"),
        ("GITHUB_TOKEN", "{}", 3,
         "alert_routes: mobile: 'GITHUB_TOKEN' is not a route variable: name one such as "
         "OKR_ALERT_WEBHOOK_URL_MOBILE (the URL itself stays in the environment)"),
    ],
)  # fmt: skip
def test_bad_alert_rules_are_one_line_errors_naming_file_line_and_key(
    tmp_path, route, alerts, line, message
):
    path, definitions = load(tmp_path, route=route, alerts=alerts)
    assert [str(problem) for problem in definitions.errors] == [f"{path}:{line}: {message}"]
    assert definitions.for_quarter(Q4) is None


def test_a_route_for_an_owner_nobody_is_is_a_warning(tmp_path):
    path = tmp_path / "2026-Q4.yaml"
    text_ = QUARTER_YAML.format(route="OKR_ALERT_WEBHOOK_URL_MOBILE", alerts="{}")
    path.write_text(text_.replace("{mobile:", "{mobil:"), encoding="utf-8")
    definitions = load_definitions(path)
    assert [str(problem) for problem in definitions.warnings] == [
        f"{path}:3: warning: alert_routes.mobil: no objective or key result is owned by "
        "'mobil' (owners: mobile, web)",
        f"{path}:4: warning: objectives: every KR of 2026-Q4 is a manual check-in; measure at "
        "least one from a source that reports by itself (github, google_analytics, hubspot, "
        "jira, salesforce)",
    ]


def test_the_webhook_settings_never_show_the_url():
    url = f"https://hooks.example.com/services/{SECRET}"
    settings = Settings.from_env(
        {"OKR_ALERT_WEBHOOK_URL": url, "OKR_ALERT_WEBHOOK_URL_MOBILE": url + "2", "OTHER": "x"},
        sources=[],
    )
    assert dict(settings.alert_webhooks) == {
        "OKR_ALERT_WEBHOOK_URL": url,
        "OKR_ALERT_WEBHOOK_URL_MOBILE": url + "2",
    }
    assert SECRET not in repr(settings)
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"OKR_ALERT_WEBHOOK_URL_MOBILE": "hooks/" + SECRET}, sources=[])
    assert str(error.value) == (
        "OKR_ALERT_WEBHOOK_URL_MOBILE is not an http(s) URL (expected e.g. https://hooks.slack.com/...)"
    )


# -- recording and claiming in the warehouse --------------------------------------------------


def alert_history(statuses: list[str]) -> pd.DataFrame:
    frame = history("adoption", status=statuses)
    frame["objective_id"], frame["kr_title"] = "launch", "Adoption from 0 to 100"
    frame["owner"] = "mobile"  # the objective's owner, as kr_scores has it
    return frame


def test_recording_the_same_days_again_adds_nothing_and_late_data_does_not_re_announce(
    warehouse_url, tmp_path
):
    _, definitions = load(tmp_path, alerts="{dwell_days: 2, score_below: null}")
    okr_file = definitions.for_quarter(Q4)
    warehouse = Warehouse(warehouse_url)
    statuses = ["on_track"] * 7 + ["at_risk", "at_risk", "at_risk"]
    frame = alert_history(statuses)
    assert found(quarter_transitions(okr_file, frame)) == [
        ("status_changed", day(9), "on_track", "at_risk")
    ]
    new = quarter_transitions(okr_file, frame)
    assert len(warehouse.add_alerts(new, "run-1")) == 1
    assert len(warehouse.add_alerts(new, "run-2")) == 0
    # Day 8 revised to on_track: at_risk now holds from day 9, held on day 10. It was
    # announced on day 9 already, so nothing new.
    revised = alert_history(["on_track"] * 8 + ["at_risk", "at_risk"])
    later = quarter_transitions(okr_file, revised)
    assert found(later) == [("status_changed", day(10), "on_track", "at_risk")]
    assert len(warehouse.add_alerts(later, "run-3", select_new=not_announced)) == 0
    stored = warehouse.read_alerts()
    assert len(stored) == 1 and stored.loc[0, "run_id"] == "run-1"
    assert stored.loc[0, "route"] == "OKR_ALERT_WEBHOOK_URL_MOBILE"
    assert stored.loc[0, "objective_title"] == "Launch the app"
    assert stored.loc[0, "attempts"] == 0 and stored.loc[0, "delivered_at"] is None
    warehouse.close()


def scored(warehouse: Warehouse, statuses: list[str]) -> None:
    """kr_scores rows for `adoption` from 10-01, as a scoring run writes them."""
    from okr_metrics.pipelines.scoring.rules import KR_SCORE_COLUMNS

    frame = alert_history(statuses).assign(
        kr_type="increase", start=0.0, value=1.0, definition_hash="h"
    )
    frame = frame.reindex(columns=KR_SCORE_COLUMNS)
    warehouse.replace_kr_scores(frame, day(1), day(len(statuses)), "scores")


class Receiver:
    """A webhook receiver with two routes (the default one and "-mobile"): what each got.

    `failures` makes a route answer 503 to its first posts; `delay` slows every answer.
    """

    def __init__(self, httpserver, failures: dict[str, int] | None = None, delay: float = 0.0):
        self.posts: list[tuple[str, dict]] = []
        self.tried: dict[str, int] = {"": 0, "-mobile": 0}
        self.failures = {"": 0, "-mobile": 0, **(failures or {})}
        self.delay = delay
        self.lock = threading.Lock()
        for suffix in self.tried:
            httpserver.expect_request(
                f"/services/{SECRET}{suffix}", method="POST"
            ).respond_with_handler(self.handle)
        self.url = httpserver.url_for(f"/services/{SECRET}")
        self.mobile_url = httpserver.url_for(f"/services/{SECRET}-mobile")

    def handle(self, request: Request) -> Response:
        time.sleep(self.delay)
        suffix = "-mobile" if request.path.endswith("-mobile") else ""
        with self.lock:
            self.tried[suffix] += 1
            if self.failures[suffix]:
                self.failures[suffix] -= 1
                return Response("upstream busy", status=503)
            self.posts.append((suffix, json.loads(request.get_data())))
        return Response("ok")

    def texts(self, mobile: bool = False) -> list[str]:
        wanted = "-mobile" if mobile else ""
        return [body["text"] for suffix, body in self.posts if suffix == wanted]


def test_two_runs_recording_and_delivering_at_once_post_each_alert_once(
    warehouse_url, tmp_path, httpserver
):
    _, definitions = load(tmp_path, alerts="{dwell_days: 1, score_below: null}")
    setup = Warehouse(warehouse_url)
    statuses = ["on_track"] * 7 + ["off_track", "at_risk", "on_track", "achieved"]
    scored(setup, statuses)
    setup.close()
    receiver = Receiver(httpserver, delay=0.2)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    results = []

    def run(name: str) -> None:
        try:
            warehouse = Warehouse(warehouse_url)
            barrier.wait(timeout=30)
            result = record_alerts(definitions, warehouse, day(1), day(11), name)
            barrier.wait(timeout=30)
            deliver_alerts(
                warehouse, {"OKR_ALERT_WEBHOOK_URL": receiver.url}, day(1), day(11), name, result
            )
            results.append(result)
            warehouse.close()
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(f"run-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    # Days 8..11: off_track, at_risk, back on_track, achieved; the mobile route is unset,
    # so its alerts go to the default webhook.
    assert sorted(result.recorded for result in results) == [0, 4]
    assert sum(result.delivered for result in results) == 4
    assert receiver.texts() == [
        f"status_changed: Adoption from 0 to 100 (adoption): {change} on {day(n)}; "
        "value 1 vs target 100"
        for n, change in [
            (8, "on_track -> off_track"),
            (9, "off_track -> at_risk"),
            (10, "at_risk -> on_track"),
            (11, "on_track -> achieved"),
        ]
    ]
    stored = Warehouse(warehouse_url).read_alerts()
    assert stored["delivered_at"].notna().all() and (stored["attempts"] == 1).all()
    assert set(stored["route"]) == {"OKR_ALERT_WEBHOOK_URL"}
    assert stored["claimed_by"].isna().all()


def test_a_failed_post_is_recorded_redacted_and_retried_on_the_next_run_once(
    warehouse_url, tmp_path, httpserver
):
    _, definitions = load(tmp_path, alerts="{dwell_days: 1, score_below: null}")
    warehouse = Warehouse(warehouse_url)
    scored(warehouse, ["on_track"] * 7 + ["off_track"])
    receiver = Receiver(httpserver, failures={"": 1})
    webhooks = {"OKR_ALERT_WEBHOOK_URL_MOBILE": receiver.url}
    first = deliver_alerts(
        warehouse,
        webhooks,
        day(1),
        day(8),
        "r1",
        record_alerts(definitions, warehouse, day(1), day(8), "r1"),
    )
    assert (first.recorded, first.delivered, first.failed) == (1, 0, 1)
    (row,) = warehouse.read_alerts().to_dict("records")
    assert row["attempts"] == 1 and row["delivered_at"] is None
    assert row["last_error"] == "gave up after 1 attempts on POST ***: last server error (HTTP 503)"
    # The next run's window has moved on; the failed alert is retried all the same, once.
    second = deliver_alerts(warehouse, webhooks, day(9), day(9), "r2")
    third = deliver_alerts(warehouse, webhooks, day(10), day(10), "r3")
    assert (second.delivered, third.delivered) == (1, 0)
    assert len(receiver.posts) == 1
    (row,) = warehouse.read_alerts().to_dict("records")
    assert row["attempts"] == 2 and row["delivered_at"] is not None and row["last_error"] is None
    assert row["route"] == "OKR_ALERT_WEBHOOK_URL_MOBILE"
    warehouse.close()


def test_the_message_is_slack_blocks_with_the_alert_in_words(httpserver):
    alert = {
        "quarter": "2026-Q4",
        "kr_id": "adoption",
        "kind": "threshold",
        "as_of": day(9),
        "old_state": "score >= 0.4",
        "new_state": "score < 0.4",
        "objective_id": "launch",
        "objective_title": "Launch the app",
        "kr_title": "Adoption from 0 to 100",
        "owner": "mobile",
        "value": 35.0,
        "target": 100.0,
        "reason": "score 0.35 (score < 0.4) on 2026-10-08..2026-10-09 (2 days): value 35 of "
        "target 100; from manual:quarter=2026-Q4;kr_id=adoption through 2026-10-09",
    }
    message = slack_message(alert)
    assert message["text"] == (
        "threshold: Adoption from 0 to 100 (adoption): score >= 0.4 -> score < 0.4 on "
        "2026-10-09; value 35 vs target 100"
    )
    header, section, context = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "score < 0.4: Adoption from 0 to 100"},
    }
    assert [field["text"] for field in section["fields"]] == [
        "*Objective*\nLaunch the app (launch)",
        "*Key result*\nAdoption from 0 to 100 (adoption)",
        "*Owner*\nmobile",
        "*Change*\nscore &gt;= 0.4 -&gt; score &lt; 0.4 (threshold)",
        "*Value vs target*\n35 vs 100",
        "*As of*\n2026-10-09 (2026-Q4)",
    ]
    assert context["elements"][0]["text"].startswith("score 0.35 (score &lt; 0.4) on 2026-10-08")
    # It goes out as JSON, as a Slack incoming webhook takes it.
    httpserver.expect_request("/hook", method="POST", json=message).respond_with_data("ok")
    post_webhook(httpserver.url_for("/hook"), message)
    httpserver.check_assertions()


def test_the_message_in_docs_alerts_md_is_the_one_sent():
    docs = (REPO / "docs" / "alerts.md").read_text(encoding="utf-8")
    shown = json.loads(docs.split("```json\n", 1)[1].split("```", 1)[0])
    alert = {
        "quarter": "2026-Q4",
        "kr_id": "mobile-releases",
        "kind": "status_changed",
        "as_of": day(9),
        "old_state": "on_track",
        "new_state": "off_track",
        "objective_id": "mobile-engagement",
        "objective_title": "Grow mobile app engagement",
        "kr_title": "Ship 6 mobile app releases",
        "owner": "mobile",
        "value": 0.0,
        "target": 6.0,
    }
    rows = history("mobile-releases", status=["on_track"] * 7 + ["off_track"] * 2)
    rows = rows.assign(
        value=0.0, target=6.0, progress=0.0, expected_progress=[n / 92 for n in range(1, 10)]
    )
    (alert["reason"],) = detect_transitions(
        rows,
        {"mobile-releases": STATUS_ONLY},
        {"mobile-releases": ["github:count=releases;repo=acme/mobile-app"]},
    )["reason"]
    assert slack_message(alert) == shown


def test_the_nightly_schedule_delivers_and_a_plain_backfill_does_not():
    from dagster import build_schedule_context

    from okr_metrics.pipelines.orchestration.definitions import build_definitions
    from okr_metrics.pipelines.orchestration.schedules import partition_range_tags

    schedule = build_definitions(Settings()).resolve_schedule_def("nightly")
    context = build_schedule_context(scheduled_execution_time=pd.Timestamp("2026-11-03T02:00Z"))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.tags["okr/deliver_alerts"] == "true"
    assert "okr/deliver_alerts" not in partition_range_tags(day(1), day(2))


# -- end to end: the okr command, real Dagster runs, a real receiver ---------------------------

CHECKIN_YAML = """\
quarter: 2026-Q4
alerts: {dwell_days: 2, p_achieve_below: null}
alert_routes: {mobile: OKR_ALERT_WEBHOOK_URL_MOBILE}
objectives:
  - id: growth
    title: Grow the product
    owner: product
    key_results:
      - id: activation
        title: Activation from 0 to 100
        type: increase
        start: 0
        target: 100
        alerts: {score_below: 0.08}
        metric: {source: manual, aggregate: latest}
      - id: launch
        title: Launch the app
        owner: mobile
        type: milestone
        metric: {source: manual, aggregate: latest}
"""
CHECKINS = """\
kr_id,date,value,note
activation,2026-10-01,1,
launch,2026-10-05,1,shipped
activation,2026-10-10,10,
activation,2026-10-12,5,a miscount
activation,2026-10-13,10,corrected
"""
# activation (increase 0 -> 100, latest check-in; pace = progress / (day / 92)):
#   days 1-7  value 1, the grace period: on_track; score 0.01 < 0.08 from day 1
#   days 8-9  value 1: pace 0.01 / (8/92) = 0.115, 0.102: off_track, held on day 9
#   day 10-11 value 10: pace 0.1 / (10/92) = 0.92, 0.836: on_track, held on day 11;
#             score 0.1 >= 0.08, held on day 11
#   day 12    value 5: pace 0.383, off_track, score 0.05: one day each, no alert
#   day 13    value 10: pace 0.1 / (13/92) = 0.708, on_track
#   day 14-15 pace 0.657, 0.613: at_risk, held on day 15
# launch (milestone, owner mobile): no data on days 1-4, achieved from day 5, held on day 6
EXPECTED = [
    ("activation", "threshold", day(2), None, "score < 0.08"),
    ("launch", "status_changed", day(6), None, "achieved"),
    ("activation", "status_changed", day(9), "on_track", "off_track"),
    ("activation", "status_changed", day(11), "off_track", "on_track"),
    ("activation", "threshold", day(11), "score < 0.08", "score >= 0.08"),
    ("activation", "status_changed", day(15), "on_track", "at_risk"),
]


def stored_alerts(warehouse: Warehouse) -> list[tuple]:
    return [
        (row.kr_id, row.kind, row.as_of, row.old_state, row.new_state)
        for row in warehouse.read_alerts().itertuples(index=False)
    ]


def test_backfills_re_runs_and_nightly_runs_deliver_one_message_per_transition(
    tmp_path, warehouse_url, monkeypatch, httpserver, caplog, capsys
):
    defs = tmp_path / "defs"
    (defs / "checkins").mkdir(parents=True)
    (defs / "2026-Q4.yaml").write_text(CHECKIN_YAML, encoding="utf-8")
    (defs / "checkins" / "2026-Q4.csv").write_text(CHECKINS, encoding="utf-8")
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    receiver = Receiver(httpserver, failures={"-mobile": 1})
    for name, value in {
        "OKR_DEFS": str(defs),
        "OKR_WAREHOUSE_URL": warehouse_url,
        "DAGSTER_HOME": str(home),
        "OKR_ALERT_WEBHOOK_URL": receiver.url,
        "OKR_ALERT_WEBHOOK_URL_MOBILE": receiver.mobile_url,
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level("DEBUG")
    warehouse = Warehouse(warehouse_url)
    backfill = ["backfill", "--from", "2026-10-01", "--to", "2026-10-12"]

    # A backfill records the alerts of its days and posts nothing.
    assert main(backfill) == EXIT_OK
    assert stored_alerts(warehouse) == EXPECTED[:5]
    assert receiver.tried == {"": 0, "-mobile": 0}
    # The same days again, asked to deliver: nothing new is recorded, the five are posted;
    # the mobile webhook fails its first post.
    assert main([*backfill, "--deliver-alerts"]) == EXIT_OK
    assert stored_alerts(warehouse) == EXPECTED[:5]
    assert len(receiver.texts()) == 4 and receiver.tried["-mobile"] == 1
    assert receiver.texts(mobile=True) == []
    # Three nightly runs, each re-scoring the trailing 3 days: the first posts the failed
    # alert again (once), the third finds the one new transition, on 10-15.
    assert main(["run", "--date", "2026-10-13"]) == EXIT_OK
    assert receiver.texts(mobile=True) == [
        f"status_changed: Launch the app (launch): first state -> achieved on {day(6)}; "
        "value 1 vs target 1"
    ]
    for as_of in ("2026-10-14", "2026-10-15"):
        assert main(["run", "--date", as_of]) == EXIT_OK
    assert stored_alerts(warehouse) == EXPECTED
    activation = "Activation from 0 to 100 (activation)"
    assert receiver.texts() == [
        f"threshold: {activation}: first state -> score < 0.08 on {day(2)}; value 1 vs target 100",
        f"status_changed: {activation}: on_track -> off_track on {day(9)}; value 1 vs target 100",
        f"status_changed: {activation}: off_track -> on_track on {day(11)}; value 10 vs target 100",
        f"threshold: {activation}: score < 0.08 -> score >= 0.08 on {day(11)}; "
        "value 10 vs target 100",
        f"status_changed: {activation}: on_track -> at_risk on {day(15)}; value 10 vs target 100",
    ]
    rows = warehouse.read_alerts()
    assert rows["delivered_at"].notna().all()
    assert sorted(zip(rows["kr_id"], rows["attempts"], strict=True)) == [("activation", 1)] * 5 + [
        ("launch", 2)
    ]
    assert rows["run_id"].nunique() == 2 and rows["claimed_by"].isna().all()
    assert receiver.tried == {"": 5, "-mobile": 2}
    # The asset's metadata says how delivery went, in counts.
    with dagster_instance(Settings.from_env()) as instance:
        event = instance.get_latest_materialization_event(AssetKey(["okr", "kr_alerts"]))
    metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
    assert metadata == {
        "window": "2026-10-13..2026-10-15",
        "alerts_recorded": 1,
        "alerts_by_kind": {"status_changed": 1},
        "delivered": 1,
        "failed": 0,
        "not_delivered": "",
    }

    # The webhook URL is nowhere: not in the warehouse, the logs, the output or Dagster's storage.
    with warehouse.engine.connect() as connection:
        for table in ("kr_alerts", "kr_scores", "source_runs", "rejected_observations"):
            dump = json.dumps(
                [list(r) for r in connection.execute(text(f"SELECT * FROM {table}"))], default=str
            )
            assert "SECRET" not in dump, table
    out = capsys.readouterr()
    # (the receiver's own request log, werkzeug's, is the one place that shows its path)
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))
    assert "SECRET" not in ours + out.out + out.err
    for path in home.rglob("*"):
        if path.is_file():
            assert b"SECRET" not in path.read_bytes(), path
    warehouse.close()


def test_a_window_without_transitions_records_nothing(warehouse_url, tmp_path):
    _, definitions = load(tmp_path, alerts="{dwell_days: 2, score_below: null}")
    warehouse = Warehouse(warehouse_url)
    scored(warehouse, ["on_track"] * 7 + ["at_risk"] * 2)
    # 10-01..10-05 hold only on_track; the at_risk of 10-09 is outside the window.
    result = record_alerts(definitions, warehouse, day(1), day(5), "r1")
    assert (result.recorded, result.by_kind) == (0, {})
    assert warehouse.read_alerts().empty
    assert record_alerts(definitions, warehouse, day(6), day(9), "r2").recorded == 1
    warehouse.close()
