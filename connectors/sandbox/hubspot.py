"""HubSpot's part of the sandbox: the CRM search API of any object.

`register(router, data)` (a built-in API of the sandbox, `registry.py`) serves
`POST /crm/v3/objects/{object}/search` in HubSpot's wire format
(https://developers.hubspot.com/docs/api-reference/latest/crm/objects/deals/search-deals):
`filterGroups` (OR of groups, AND of filters; EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN,
NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN), `sorts`,
`properties`, `limit` (at most 200) and the `after` cursor with `paging.next`, `total`,
property values as strings, and HubSpot's error bodies. Like HubSpot, a search never
pages past its 10,000th result: `after` at or past the cap is a 400.

Filters compare as HubSpot does: dates and datetimes (ISO text or epoch ms, stored or
sent) by epoch milliseconds, a date property being midnight UTC of its day; decimal
numbers as numbers; other text as whole values, case-insensitively. IN / NOT_IN take a
`values` list (a value holding a comma is one value, never split); BETWEEN takes `value`
and `highValue`, both ends included; HAS_PROPERTY / NOT_HAS_PROPERTY need no value. A
filter missing what its operator takes is a 400.

`deals` get deterministic sample data on first request (seeded by the name): from
2025-01-01 up to the sandbox's horizon, 5 to 8 SMB deals won a day, plus won deals of
other segments, lost deals and open deals (`dealstage`, `customer_segment`, `amount`,
`closedate`, ...). Tests replace an object's records through
`sandbox.data.hubspot.set_records(...)` and lower the result cap with `set_result_cap`.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

from okr_metrics.connectors.sandbox.api import (
    Api,
    ApiData,
    BadRequest,
    Listings,
    parse_moment,
    timestamp,
    token_problem,
)
from okr_metrics.connectors.sandbox.data import SandboxData, scaled
from okr_metrics.connectors.sandbox.server import Router, SandboxRequest, SandboxResponse

RESULT_CAP = 10_000
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
DOCS = "https://developers.hubspot.com/docs/api-reference/latest/crm/objects/deals/search-deals"

# What a search returns when the request names no properties.
DEFAULT_PROPERTIES = {
    "deals": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
              "hs_object_id", "pipeline"],
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
}  # fmt: skip
# Always returned besides the requested properties.
ALWAYS = ("createdate", "hs_lastmodifieddate", "hs_object_id")
STANDARD_OBJECTS = {
    "deals", "contacts", "companies", "tickets", "line_items", "products", "quotes",
    "calls", "emails", "meetings", "notes", "tasks",
}  # fmt: skip

_OPEN_STAGES = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
]
_COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
              "Wonka", "Cyberdyne", "Soylent", "Tyrell", "Oscorp", "Pied Piper", "Aperture"]  # fmt: skip
_PLANS = ["Starter", "Growth", "Pro", "Analytics add-on", "Annual renewal"]
_AMOUNTS = {"smb": (300, 2_000), "mid_market": (2_000, 15_000), "enterprise": (15_000, 120_000)}


def hubspot_timestamp(moment: datetime) -> str:
    """HubSpot's datetime format: `2026-10-15T09:12:33.123Z`."""
    return timestamp(moment, millis=True)


def _to_ms(value: Any) -> int | None:
    """Epoch milliseconds of a datetime value (ISO string, epoch-ms string or datetime)."""
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time(), tzinfo=timezone.utc)
    elif not isinstance(value, datetime):
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            value = parse_moment(text)
        except ValueError:
            return None
    moment = parse_moment(value)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


@dataclass
class HubSpotObject:
    """One object type's records, as HubSpot stores them (every property value a string)."""

    name: str
    records: list[dict[str, Any]] = field(default_factory=list)
    result_cap: int = RESULT_CAP
    # How HubSpot's own examples show the cursor: opaque text (`NTI1Cg%3D%3D`), not a number.
    opaque_cursor: bool = False
    # Some answers leave `total` out.
    without_total: bool = False


class HubSpotSandboxData(ApiData):
    """The CRM objects the sandbox serves: `deals` generated on first use, others set by tests."""

    name = "hubspot"

    def object(self, name: str) -> HubSpotObject:
        return self.cached(
            name, lambda: HubSpotObject(name, self._generate_deals() if name == "deals" else [])
        )

    def records(self, name: str) -> list[dict[str, Any]]:
        return list(self.object(name).records)

    def set_records(self, name: str, records: Iterable[Mapping[str, Any]]) -> HubSpotObject:
        """Replace an object's records with hand-written ones.

        Each record is a mapping of property values (`{"dealstage": "closedwon",
        "closedate": "2026-10-01T09:00:00Z", "amount": 500}`), optionally with an `id`.
        Datetimes may be `datetime`s, ISO strings or epoch-millisecond strings and are
        served as given (strings) or as HubSpot's ISO format (`datetime`s); None stays null.
        """
        built = [_record(spec, index) for index, spec in enumerate(records, start=1)]
        with self._lock:
            earlier = self._items.get(name)
            cap = earlier.result_cap if earlier is not None else RESULT_CAP
            return self.replace(name, HubSpotObject(name, built, cap))

    def set_result_cap(self, name: str, cap: int) -> None:
        """Lower the 10,000-result paging cap of an object (tests: a small cap, a fast test)."""
        self.object(name).result_cap = cap

    def set_paging(
        self, name: str, *, opaque_cursor: bool = False, without_total: bool = False
    ) -> None:
        """Answer an object's searches with opaque `after` cursors, or without `total`."""
        found = self.object(name)
        found.opaque_cursor, found.without_total = opaque_cursor, without_total

    # -- generated sample data ----------------------------------------------------------

    def _generate_deals(self) -> list[dict[str, Any]]:
        rng = random.Random("hubspot:deals")
        now, volume = self.now, self.data.volume(self.name)
        specs: list[dict[str, Any]] = []
        day = datetime.combine(self.first_day, datetime.min.time(), tzinfo=timezone.utc)
        while day.date() <= now.date():
            mixes = (
                [("closedwon", "smb")] * scaled(rng.randint(5, 8), volume)
                + [("closedwon", "mid_market")] * scaled(rng.randint(1, 3), volume)
                + [("closedwon", "enterprise")] * scaled(int(rng.random() < 0.3), volume)
                + [("closedlost", "smb")] * scaled(rng.randint(2, 5), volume)
                + [("closedlost", "mid_market")] * scaled(rng.randint(0, 2), volume)
                + [
                    (rng.choice(_OPEN_STAGES), rng.choice(["smb", "mid_market", "enterprise"]))
                    for _ in range(scaled(rng.randint(3, 6), volume))
                ]
            )
            for stage, segment in mixes:
                closed = day + timedelta(milliseconds=rng.randrange(86_400_000))
                created = closed - timedelta(days=rng.uniform(1, 60))
                modified = closed + timedelta(hours=rng.uniform(0, 2))
                low, high = _AMOUNTS[segment]
                spec = {
                    "dealname": f"{rng.choice(_COMPANIES)} - {rng.choice(_PLANS)}",
                    "amount": str(round(rng.uniform(low, high), -1 if segment == "smb" else 2)),
                    "dealstage": stage,
                    "pipeline": "default",
                    "customer_segment": segment,
                    "closedate": closed,
                    "createdate": created,
                    "hs_lastmodifieddate": min(modified, now),
                }
                if closed <= now:
                    specs.append(spec)
            day += timedelta(days=1)
        return [_record(spec, index) for index, spec in enumerate(specs, start=1)]


def _record(spec: Mapping[str, Any], index: int) -> dict[str, Any]:
    """A stored record: an id and every property value as HubSpot sends it (strings)."""
    record_id = str(spec.get("id") or 14_000_000_000 + index)
    properties: dict[str, Any] = {}
    for name, value in spec.items():
        if name == "id":
            continue
        if isinstance(value, datetime):
            properties[name] = hubspot_timestamp(parse_moment(value))
        elif isinstance(value, bool):
            properties[name] = "true" if value else "false"
        elif value is None:
            properties[name] = None
        else:
            properties[name] = str(value)
    created = (
        properties.get("createdate") or properties.get("closedate") or "2025-01-01T00:00:00.000Z"
    )
    properties.setdefault("createdate", created)
    properties.setdefault("hs_lastmodifieddate", created)
    properties["hs_object_id"] = record_id
    return {"id": record_id, "properties": properties}


# --- the search ------------------------------------------------------------------------------
# A search HubSpot refuses raises `BadRequest`: 400 VALIDATION_ERROR.


def search(
    found: HubSpotObject, body: Any, base_url: str, listings: Listings | None = None
) -> dict[str, Any]:
    """The search response of a request body (raises `BadRequest` for an invalid one);
    `listings` keeps a search's matches for the pages after its first."""
    if not isinstance(body, Mapping):
        raise BadRequest("Invalid input JSON on line 1, column 1: expected a search request")
    groups = body.get("filterGroups") or []
    if len(groups) > MAX_GROUPS:
        raise BadRequest(f"Too many filter groups ({len(groups)}); the maximum is {MAX_GROUPS}.")
    if sum(len(g.get("filters") or []) for g in groups) > MAX_FILTERS:
        raise BadRequest(f"Too many filters; the maximum is {MAX_FILTERS}.")
    for group in groups:
        if len(group.get("filters") or []) > MAX_FILTERS_PER_GROUP:
            raise BadRequest(
                f"Too many filters in a filter group; the maximum is {MAX_FILTERS_PER_GROUP}."
            )
        for item in group.get("filters") or []:
            _check_filter(item)
    limit = _number(body.get("limit", DEFAULT_LIMIT), "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
    after = _cursor(found, body.get("after"))
    if after >= found.result_cap:
        raise BadRequest(
            f"The search can page through {found.result_cap} results at most: narrow it with "
            "filters (after must be below the cap)."
        )

    def work_out() -> list[dict[str, Any]]:
        matched = [
            record
            for record in found.records
            if not groups or any(_matches_group(record, g) for g in groups)
        ]
        return _sorted(matched, body.get("sorts") or [])

    if listings is None:
        matched = work_out()
    else:
        asked = {name: value for name, value in body.items() if name not in ("after", "limit")}
        key = (found.name, id(found), json.dumps(asked, sort_keys=True, default=str))
        matched = listings.items(key, after == 0, work_out)
    end = min(after + limit, found.result_cap, len(matched))
    wanted = body.get("properties") or DEFAULT_PROPERTIES.get(found.name, list(ALWAYS))
    response: dict[str, Any] = {
        "total": len(matched),
        "results": [_served(record, wanted) for record in matched[after:end]],
    }
    if found.without_total:
        del response["total"]
    if end < len(matched):
        cursor = _opaque(end) if found.opaque_cursor else str(end)
        link = f"{base_url}/crm/v3/objects/{found.name}/search?after={cursor}"
        response["paging"] = {"next": {"after": cursor, "link": link}}
    return response


def _opaque(offset: int) -> str:
    """An offset as HubSpot's examples show a cursor: `525` is `NTI1Cg%3D%3D`."""
    return quote(base64.b64encode(f"{offset}\n".encode()).decode(), safe="")


def _cursor(found: HubSpotObject, value: Any) -> int:
    if value in (None, ""):
        return 0
    if not found.opaque_cursor:
        return _number(value, "after")
    try:
        return int(base64.b64decode(unquote(str(value)), validate=True).decode().strip())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(f"after {value!r} is not a cursor this search gave.") from None


def _number(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer, got {value!r}.") from None


_VALUE_OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
_OPERATORS = _VALUE_OPERATORS | {"BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}


def _check_filter(item: Any) -> None:
    if not isinstance(item, Mapping) or not item.get("propertyName"):
        raise BadRequest("Each filter needs a propertyName.")
    operator = item.get("operator", "EQ")
    if operator not in _OPERATORS:
        raise BadRequest(f"Unknown operator {operator!r}.")
    if operator in _VALUE_OPERATORS and item.get("value") is None:
        raise BadRequest(f"The {operator} filter on {item['propertyName']} needs a value.")
    if operator == "BETWEEN" and (item.get("value") is None or item.get("highValue") is None):
        raise BadRequest(f"The BETWEEN filter on {item['propertyName']} needs value and highValue.")
    if operator in ("IN", "NOT_IN") and not isinstance(item.get("values"), list):
        raise BadRequest(f"The {operator} filter on {item['propertyName']} needs values.")


def _matches_group(record: Mapping[str, Any], group: Mapping[str, Any]) -> bool:
    return all(_matches(record, item) for item in group.get("filters") or [])


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T.*)?$")
# Decimal numbers only: not Python's `nan`, `inf` or `1_000`, which HubSpot takes as words.
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _comparable(value: Any) -> Any:
    """A value as HubSpot compares it: dates and datetimes by epoch ms, numbers as numbers,
    text case-insensitively (whole values: a value holding a comma is one value)."""
    if value is None:
        return None
    text = str(value).strip()
    if _DATE.match(text):
        return _to_ms(text)
    if _NUMBER.match(text):
        return float(text)
    return text.casefold()


def _matches(record: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    name, operator = item["propertyName"], item.get("operator", "EQ")
    stored = record["properties"].get(name) if name != "hs_object_id" else record["id"]
    has = stored not in (None, "")
    if operator == "HAS_PROPERTY":
        return has
    if operator == "NOT_HAS_PROPERTY":
        return not has
    mine = _comparable(stored)
    if operator in ("IN", "NOT_IN"):
        inside = has and mine in {_comparable(v) for v in item["values"]}
        return inside if operator == "IN" else not inside
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(item["value"]).casefold().strip("*")
        inside = has and token in str(stored).casefold()
        return inside if operator == "CONTAINS_TOKEN" else not inside
    if operator == "NEQ":
        return not has or mine != _comparable(item["value"])
    if not has:
        return False
    other = _comparable(item["value"])
    try:
        if operator == "BETWEEN":
            return other <= mine <= _comparable(item["highValue"])
        return {
            "EQ": lambda: mine == other,
            "LT": lambda: mine < other,
            "LTE": lambda: mine <= other,
            "GT": lambda: mine > other,
            "GTE": lambda: mine >= other,
        }[operator]()
    except TypeError:  # a number against a word: no match, as in HubSpot
        return False


def _sorted(records: list[dict[str, Any]], sorts: list[Any]) -> list[dict[str, Any]]:
    """Records in `sorts` order (objects or `"name"`/`"-name"` strings); by id otherwise."""
    ordered = sorted(records, key=lambda r: int(r["id"]) if r["id"].isdigit() else r["id"])
    for sort in reversed(sorts):
        if isinstance(sort, str):
            name, descending = sort.lstrip("-"), sort.startswith("-")
        elif isinstance(sort, Mapping) and sort.get("propertyName"):
            name, descending = sort["propertyName"], sort.get("direction") == "DESCENDING"
        else:
            raise BadRequest("Each sort needs a propertyName.")

        def key(record: Mapping[str, Any], name: str = name) -> tuple:
            value = _comparable(record["properties"].get(name))
            # Nulls last, whatever the direction; numbers before words.
            return (value is None, isinstance(value, str), value if value is not None else 0)

        present = [r for r in ordered if r["properties"].get(name) not in (None, "")]
        absent = [r for r in ordered if r["properties"].get(name) in (None, "")]
        ordered = sorted(present, key=key, reverse=descending) + absent
    return ordered


def _served(record: Mapping[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
    """A record as the search returns it: the asked properties (null when unset) and ALWAYS."""
    properties = record["properties"]
    shown = {name: properties.get(name) for name in [*ALWAYS, *wanted]}
    return {
        "id": record["id"],
        "properties": dict(sorted(shown.items())),
        "createdAt": properties.get("createdate"),
        "updatedAt": properties.get("hs_lastmodifieddate"),
        "archived": False,
    }


# --- the HTTP side -----------------------------------------------------------------------


_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """HubSpot's error bodies (https://developers.hubspot.com/docs/guides/api/error-handling)."""
    correlation = str(uuid.uuid4())
    if status == 429:
        return {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation,
            "policyName": "TEN_SECONDLY_ROLLING",
            "groupName": "publicapi:private-app-api-calls-ten-secondly:9001",
        }
    return {
        "status": "error",
        "message": message,
        "correlationId": correlation,
        "category": _CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR"),
    }


HUBSPOT = Api("application/json;charset=utf-8", error_body)
_NO_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication "
    "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


def check_auth(request: SandboxRequest) -> SandboxResponse | None:
    """HubSpot's answer to a missing or bad token (`invalid` or `invalid-...`)."""
    if token_problem(request, invalid_prefix=True) is None:
        return None
    return HUBSPOT.error(401, _NO_CREDENTIALS)


def register(router: Router, data: SandboxData) -> None:
    """Serve the CRM search from `data.hubspot` (what `okr sandbox` and the tests call)."""
    hubspot = HubSpotSandboxData.of(data)
    listings = Listings()

    def handle(request: SandboxRequest) -> SandboxResponse:
        name = request.path_params["object"]
        custom = name.startswith(("2-", "p")) and ("_" in name or name[2:].isdigit())
        if name not in STANDARD_OBJECTS and not custom:
            raise BadRequest(f"Unable to infer object type from: {name}")
        return HUBSPOT.reply(search(hubspot.object(name), request.body, request.base_url, listings))

    HUBSPOT.add(router, "POST", "/crm/v3/objects/{object}/search", handle, auth=check_auth)
