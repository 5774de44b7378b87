"""Alerts as data, then delivery: called by the `kr_alerts` asset, after `kr_scores`.

`record_alerts` replays each quarter's stored `kr_scores` history with the KRs' `alerts`
rules (`pipelines/scoring/alerts.py`) and records the transitions of the run's days in
`kr_alerts`, each once: its key is (quarter, kr_id, kind, as_of, new_state), and a state
already announced is not announced again. `deliver_alerts` is the outbox: it claims the
undelivered alerts of the run's days and those whose post failed before, posts each as a
Slack-compatible message to its webhook, and records the outcome. Only runs that deliver
call it (the nightly run, `okr run`, `okr backfill --deliver-alerts`). The rules, the
message and the mechanism are in docs/alerts.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from okr_metrics.connectors.errors import SourceError
from okr_metrics.connectors.http import HttpClient
from okr_metrics.pipelines.definitions import Definitions, KeyResult, OkrFile
from okr_metrics.pipelines.definitions.model import AlertRules
from okr_metrics.pipelines.jobs import handoff
from okr_metrics.pipelines.scoring.alerts import (
    HISTORY_COLUMNS,
    AlertWatch,
    Bound,
    detect_transitions,
)
from okr_metrics.pipelines.vocabulary.quarters import quarters_between
from okr_metrics.pipelines.vocabulary.terms import ALERT_WEBHOOK_VARIABLE
from okr_metrics.warehouse.store import Warehouse

log = logging.getLogger("okr_metrics")

# A post that keeps failing is given up after this many runs (its last_error stays).
MAX_DELIVERY_ATTEMPTS = 10
# How long a run's claim on an alert lasts; a run that died mid-post frees its alerts then.
CLAIM_LEASE = timedelta(minutes=15)
POST_TIMEOUT = (5.0, 15.0)
# Slack's limits: a header of 150 characters, a text field of 3,000.
_HEADER_LIMIT, _TEXT_LIMIT = 150, 2900

Post = Callable[[str, Mapping[str, Any]], None]


@dataclass
class AlertsResult:
    """What a run recorded and delivered: counts only, never a URL (for Dagster metadata)."""

    recorded: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    # Why nothing was posted: not a run that delivers, or no webhook set.
    not_delivered: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "alerts_recorded": self.recorded,
            "alerts_by_kind": dict(sorted(self.by_kind.items())),
            "delivered": self.delivered,
            "failed": self.failed,
            "not_delivered": self.not_delivered or "",
        }


def alert_watch(rules: AlertRules) -> AlertWatch:
    """The scoring layer's watch for a KR's `alerts` rules."""
    bounds = [
        Bound("threshold", column, direction, limit)  # type: ignore[arg-type]
        for column, direction, limit in (
            ("score", "below", rules.score_below),
            ("score", "above", rules.score_above),
            ("value", "below", rules.value_below),
            ("value", "above", rules.value_above),
        )
        if limit is not None
    ]
    if rules.p_achieve_below is not None:
        bounds.append(Bound("forecast_miss", "p_achieve", "below", rules.p_achieve_below))
    return AlertWatch(rules.status_changes, tuple(bounds), rules.dwell_days)


def _metric_keys(okr_file: OkrFile, key_result: KeyResult) -> list[str]:
    return [okr_file.metric_key(key_result, part) for part in key_result.series_parts]


def quarter_transitions(okr_file: OkrFile, history: pd.DataFrame) -> pd.DataFrame:
    """Every transition of one quarter's `kr_scores` history (from its first day), with the
    objective's title and the route each alert goes to."""
    watches, keys, titles = {}, {}, {}
    for objective, key_result in okr_file.key_results:
        watches[key_result.id] = alert_watch(okr_file.alert_rules(key_result))
        keys[key_result.id] = _metric_keys(okr_file, key_result)
        titles[objective.id] = objective.title
    transitions = detect_transitions(history, watches, keys)
    transitions["objective_title"] = [
        titles.get(objective_id, objective_id) for objective_id in transitions["objective_id"]
    ]
    transitions["route"] = [okr_file.alert_route(owner) for owner in transitions["owner"]]
    return transitions


def not_announced(stored: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """`fresh` without the transitions into a state already announced.

    Late data can move the day a state is first held (at_risk held from 10-14, then
    revised to 10-15): the state was announced, so it is not announced again. The old
    state is the one last announced, what the owner was told.
    """
    kept = []
    announced: dict[tuple, list[tuple[date, str]]] = {}
    for row in stored.itertuples(index=False):
        announced.setdefault((row.quarter, row.kr_id, row.kind, row.rule), []).append(
            (row.as_of, row.new_state)
        )
    for index, row in fresh.sort_values("as_of", kind="stable").iterrows():
        key = (row["quarter"], row["kr_id"], row["kind"], row["rule"])
        earlier = sorted(item for item in announced.get(key, []) if item[0] < row["as_of"])
        if earlier and earlier[-1][1] == row["new_state"]:
            continue
        if earlier:
            fresh.at[index, "old_state"] = earlier[-1][1]
        announced.setdefault(key, []).append((row["as_of"], row["new_state"]))
        kept.append(index)
    return fresh.loc[kept]


def record_alerts(
    definitions: Definitions,
    warehouse: Warehouse,
    start: date,
    end: date,
    run_id: str,
    progress: Callable[[str], None] = log.info,
) -> AlertsResult:
    """Record the transitions whose day is in start..end (each once), quarter by quarter."""
    result = AlertsResult()
    for quarter in quarters_between(start, end):
        okr_file = definitions.for_quarter(quarter)
        if okr_file is None:
            continue  # kr_scores reported it; nothing was scored
        first, last = max(start, quarter.start), min(end, quarter.end)
        history = handoff.read_kr_scores(
            warehouse, run_id, "kr_alerts", str(quarter), quarter.start, last, HISTORY_COLUMNS
        )
        transitions = quarter_transitions(okr_file, history)
        # A Series mask: an empty list would select no columns rather than no rows.
        in_day = pd.Series(
            [first <= as_of <= last for as_of in transitions["as_of"]],
            index=transitions.index,
            dtype=bool,
        )
        in_window = transitions[in_day].reset_index(drop=True)
        recorded = warehouse.add_alerts(in_window, run_id, select_new=not_announced)
        result.recorded += len(recorded)
        for kind, count in recorded["kind"].value_counts().items():
            result.by_kind[str(kind)] = result.by_kind.get(str(kind), 0) + int(count)
        progress(f"kr_alerts: {quarter} {first}..{last}: {len(recorded)} new alerts")
    return result


# -- delivery ---------------------------------------------------------------------------------


def post_webhook(url: str, message: Mapping[str, Any]) -> None:
    """POST `message` as JSON, once; raises `SourceError` (the URL redacted) on failure.

    One attempt: the outbox retries on the next run. The whole URL, its path and its query
    are secrets to the client, so no message or log line shows them.
    """
    parts = urlsplit(url)
    secrets = [url, parts.path if len(parts.path) > 1 else None, parts.query or None]
    client = HttpClient(
        "alerts", url, secrets=secrets, timeout=POST_TIMEOUT, max_attempts=1, max_wait=0
    )
    try:
        client.request("POST", url, json=dict(message))
    finally:
        client.close()


def deliver_alerts(
    warehouse: Warehouse,
    webhooks: Mapping[str, str],
    start: date,
    end: date,
    run_id: str,
    result: AlertsResult | None = None,
    post: Post = post_webhook,
) -> AlertsResult:
    """Post the alerts this run claims (see `Warehouse.claim_alerts`) and record each outcome.

    `webhooks` maps variables to URLs (`Settings.alert_webhooks`). An alert goes to its
    route's webhook, else to OKR_ALERT_WEBHOOK_URL's; with neither set it stays recorded,
    untried.
    """
    result = result or AlertsResult()
    if not webhooks:
        result.not_delivered = f"{ALERT_WEBHOOK_VARIABLE} not set: alerts are only recorded"
        return result
    routes = None if ALERT_WEBHOOK_VARIABLE in webhooks else sorted(webhooks)
    claimed = warehouse.claim_alerts(
        run_id, start, end, MAX_DELIVERY_ATTEMPTS, CLAIM_LEASE, routes=routes
    )
    for alert in claimed.to_dict("records"):
        route = alert["route"] if alert["route"] in webhooks else ALERT_WEBHOOK_VARIABLE
        error = None
        try:
            post(webhooks[route], slack_message(alert))
        except SourceError as failure:
            error = failure.reason
        warehouse.finish_alert(alert, run_id, route, error)
        if error is None:
            result.delivered += 1
        else:
            result.failed += 1
            result.errors.append(f"{alert['kr_id']} {alert['as_of']}: {error}")
    return result


def _escape(text: Any) -> str:
    """Text for Slack's mrkdwn, where &, < and > are markup."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _number(value: Any) -> str:
    if value is None or value != value:
        return "none"
    return f"{float(value):,.4g}"


def slack_message(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The Slack-compatible message of one alert: a text fallback and blocks."""
    old = alert.get("old_state") or "first state"
    change = f"{old} -> {alert['new_state']}"
    text = (
        f"{alert['kind']}: {alert['kr_title']} ({alert['kr_id']}): {change} "
        f"on {alert['as_of']}; value {_number(alert.get('value'))} vs target "
        f"{_number(alert.get('target'))}"
    )
    header = f"{alert['new_state']}: {alert['kr_title']}"
    if len(header) > _HEADER_LIMIT:
        header = header[: _HEADER_LIMIT - 1] + "…"

    def labelled(label: str, value: str) -> dict[str, str]:
        return {"type": "mrkdwn", "text": f"*{label}*\n{_escape(value)}"}

    owner = alert.get("owner") or "none"
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
            {
                "type": "section",
                "fields": [
                    labelled("Objective", f"{alert['objective_title']} ({alert['objective_id']})"),
                    labelled("Key result", f"{alert['kr_title']} ({alert['kr_id']})"),
                    labelled("Owner", owner),
                    labelled("Change", f"{change} ({alert['kind']})"),
                    labelled(
                        "Value vs target",
                        f"{_number(alert.get('value'))} vs {_number(alert.get('target'))}",
                    ),
                    labelled("As of", f"{alert['as_of']} ({alert['quarter']})"),
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _escape(alert["reason"])[:_TEXT_LIMIT]}],
            },
        ],
    }
