"""Salesforce's part of the sandbox: SOQL queries and sObject describes, in Salesforce's wire format.

`register(router, data)` (a built-in API of the sandbox, `registry.py`) serves, for any
API version:

- `GET /services/data/vXX.X/query?q=SOQL`: `totalSize`, `done`, `records` (each with its
  `attributes`) and, while not done, `nextRecordsUrl`
  (`/services/data/vXX.X/query/01g...-2000`), in batches of 2000 (or the request's
  `Sforce-Query-Options: batchSize=N`, or what a test sets);
- `GET /services/data/vXX.X/query/{locator}`: the next batch;
- `GET /services/data/vXX.X/sobjects/{object}/describe`: the object's fields and types.

Requests need `Authorization: Bearer <token>`; without it, or with the token
`invalid`, the answer is Salesforce's 401 `INVALID_SESSION_ID`. Errors are Salesforce's
JSON array `[{"message": ..., "errorCode": ...}]`.

The sandbox cannot run any SOQL. It understands `SELECT field, ... FROM object
[WHERE ...] [ORDER BY ...] [LIMIT n]` where the condition is comparisons
(`=`, `!=`, `<`, `<=`, `>`, `>=`) of a field with a literal of the field's type
(`'text'`, numbers, `null`, `true`/`false`, date literals `2026-10-01`, datetime literals
`2026-10-01T00:00:00Z`), joined by `AND`, with parentheses. Anything else is a 400
`MALFORMED_QUERY`; unknown objects and fields, and literals of the wrong type, get
Salesforce's `INVALID_TYPE` / `INVALID_FIELD` answers.

`Opportunity` holds deterministic sample data (seeded by name) from 2025-01-01 up to
the sandbox's horizon: a few Closed Won deals a day for the Analytics Dashboard, 4 to 8
Closed Won SMB deals a day (some without an Amount), and lost, open, mid-market and
enterprise deals that the sample definitions must filter out. Tests replace or add an
object through `sandbox.data.salesforce.set_records(...)` and read the queries the
sandbox was asked in `sandbox.data.salesforce.queries`.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from okr_metrics.connectors.sandbox import api
from okr_metrics.connectors.sandbox.data import SandboxData, scaled
from okr_metrics.connectors.sandbox.server import Router, SandboxRequest, SandboxResponse

BATCH_SIZE = 2000  # Salesforce's default and maximum batch
MIN_REQUESTED_BATCH = 200  # the smallest batchSize Salesforce honours in Sforce-Query-Options
MAX_CURSORS = 1000  # open query locators kept; older ones answer INVALID_QUERY_LOCATOR

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "picklist": "xsd:string",
    "textarea": "xsd:string",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "boolean": "xsd:boolean",
}
_NUMERIC = {"currency", "double", "percent", "int"}
_TEXT = {"id", "reference", "string", "picklist", "textarea"}
_ACCOUNTS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell"]
OPPORTUNITY_FIELDS = {
    "Id": "id",
    "Name": "string",
    "StageName": "picklist",
    "Type": "picklist",
    "Amount": "currency",
    "CloseDate": "date",
    "CreatedDate": "datetime",
    "Product__c": "picklist",
    "Segment__c": "picklist",
}


def salesforce_datetime(moment: datetime) -> str:
    """Salesforce's JSON datetime: `2026-10-15T09:12:33.000+0000` (always UTC)."""
    return api.timestamp(moment, millis=True, z=False)


@dataclass
class SObject:
    """One object's fields (API name -> type) and records (API name -> Python value)."""

    name: str
    key_prefix: str
    fields: dict[str, str]
    records: list[dict[str, Any]] = field(default_factory=list)
    custom: bool = False

    def field_name(self, name: str) -> str | None:
        """The API spelling of a field (SOQL names are case-insensitive)."""
        wanted = name.lower()
        return next((f for f in self.fields if f.lower() == wanted), None)


def _wire_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "date":
        return value.isoformat()
    if kind == "datetime":
        return salesforce_datetime(value)
    return value


def _python_value(value: Any, kind: str) -> Any:
    """A value given to `set_records` as the sandbox keeps it."""
    if value is None:
        return None
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if kind == "datetime":
        return api.parse_moment(value if isinstance(value, datetime) else str(value))
    if kind in _NUMERIC:
        return float(value) if kind != "int" else int(value)
    if kind == "boolean":
        return bool(value)
    return str(value)


def _infer_type(values: list[Any]) -> str:
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int | float):
            return "double"
        if isinstance(value, datetime):
            return "datetime"
        if isinstance(value, date):
            return "date"
        text = str(value)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return "date"
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})", text):
            return "datetime"
        return "string"
    return "string"


def _record_id(prefix: str, number: int) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = alphabet[rest] + digits
    return f"{prefix}5g{digits.rjust(10, '0')}IAA"


class SalesforceSandboxData(api.ApiData):
    """The org's objects: a generated `Opportunity`, and whatever tests set."""

    name = "salesforce"

    def __init__(self, data: SandboxData) -> None:
        super().__init__(data)
        self.batch_size = api.Limits(BATCH_SIZE)  # records a query's batch holds
        self.queries: list[str] = []  # every SOQL query received, in order
        self._objects: dict[str, SObject] = {}
        self._version = 0

    # -- for tests --------------------------------------------------------------------

    def set_records(
        self,
        sobject: str,
        records: Iterable[Mapping[str, Any]],
        fields: Mapping[str, str] | None = None,
    ) -> None:
        """Replace (or create) an object with these records.

        Field types come from `fields` (API name -> `date`, `datetime`, `currency`,
        `string`, ...) or are inferred from the values (`"2026-10-01"` is a date,
        `"2026-10-01T09:00:00Z"` or `"...000+0000"` a datetime, numbers doubles). `Id` is
        added when missing.
        """
        records = [dict(record) for record in records]
        names: dict[str, str] = {"Id": "id"}
        for record in records:
            for name in record:
                names.setdefault(name, "")
        types = {
            name: (fields or {}).get(name)
            or kind
            or _infer_type([record.get(name) for record in records])
            for name, kind in names.items()
        }
        for name, kind in (fields or {}).items():
            types.setdefault(name, kind)
        prefix = "a0" + chr(ord("A") + len(sobject) % 26)
        built = SObject(sobject, prefix, types, custom=sobject.endswith("__c"))
        for number, record in enumerate(records, start=1):
            kept = {name: _python_value(record.get(name), kind) for name, kind in types.items()}
            kept["Id"] = str(record.get("Id") or _record_id(prefix, number))
            built.records.append(kept)
        with self._lock:
            self._objects[sobject.lower()] = built
            self._version += 1

    def set_batch_size(self, size: int | None, sobject: str | None = None) -> None:
        """Records per batch for queries of `sobject` (or of all); None: the default."""
        with self._lock:
            self.batch_size.set(size, sobject)

    def records(self, sobject: str = "Opportunity") -> list[dict[str, Any]]:
        """Every record of the object, every field, as the query endpoint writes it."""
        found = self.sobject(sobject)
        if found is None:
            raise KeyError(f"no sObject {sobject} in the sandbox")
        return [
            {name: _wire_value(record.get(name), kind) for name, kind in found.fields.items()}
            for record in found.records
        ]

    def sobject(self, name: str) -> SObject | None:
        with self._lock:
            key = name.lower()
            if key not in self._objects and key == "opportunity":
                self._objects[key] = self._generate_opportunities()
                self._version += 1
            return self._objects.get(key)

    def batch_for(self, sobject: str) -> int:
        with self._lock:
            return self.batch_size.of(sobject)

    @property
    def version(self) -> int:
        return self._version

    # -- generation -------------------------------------------------------------------

    def _generate_opportunities(self) -> SObject:
        """Every day: dashboard wins, SMB wins (some without Amount), and deals to filter out.

        The random stream depends on the name only; the horizon merely cuts what has not
        happened yet, so two sandboxes agree on every day both have seen.
        """
        rng = random.Random("salesforce:Opportunity")
        now, volume = self.now, self.data.volume(self.name)
        sobject = SObject("Opportunity", "006", dict(OPPORTUNITY_FIELDS))
        day = self.first_day
        number = 0
        while day <= now.date():
            specs: list[dict[str, Any]] = []
            for _ in range(scaled(rng.choice([0, 0, 1, 1, 1, 2, 2, 3]), volume)):
                specs.append(
                    {
                        "StageName": "Closed Won",
                        "Product__c": "Analytics Dashboard",
                        "Segment__c": rng.choice(["SMB", "Mid-Market", "Mid-Market", "Enterprise"]),
                        "Amount": round(rng.uniform(1200, 9000), 2),
                    }
                )
            for _ in range(scaled(rng.randint(4, 8), volume)):
                specs.append(
                    {
                        "StageName": "Closed Won",
                        "Product__c": rng.choice(["Core Platform", "Data Connectors"]),
                        "Segment__c": "SMB",
                        "Amount": None if rng.random() < 0.08 else round(rng.uniform(200, 2000), 2),
                    }
                )
            for _ in range(scaled(rng.randint(4, 10), volume)):
                stage = rng.choice(
                    [
                        "Closed Lost",
                        "Prospecting",
                        "Qualification",
                        "Negotiation/Review",
                        "Closed Won",
                    ]
                )
                segment = (
                    rng.choice(["Mid-Market", "Enterprise"])
                    if stage == "Closed Won"
                    else rng.choice(["SMB", "Mid-Market", "Enterprise"])
                )
                specs.append(
                    {
                        "StageName": stage,
                        "Product__c": rng.choice(
                            ["Analytics Dashboard", "Core Platform", "Data Connectors"]
                        )
                        if stage != "Closed Won"
                        else rng.choice(["Core Platform", "Data Connectors"]),
                        "Segment__c": segment,
                        "Amount": None if rng.random() < 0.1 else round(rng.uniform(500, 40000), 2),
                    }
                )
            for spec in specs:
                number += 1
                moment = datetime.combine(day, time.min, tzinfo=timezone.utc) + timedelta(
                    seconds=rng.randrange(86400)
                )
                closed = spec["StageName"].startswith("Closed")
                if closed:
                    created = moment - timedelta(
                        days=rng.randint(3, 60), seconds=rng.randrange(86400)
                    )
                    close_date = day
                else:
                    created = moment
                    close_date = day + timedelta(days=rng.randint(7, 90))
                account = rng.choice(_ACCOUNTS)
                if moment > now:
                    continue  # closed (or opened) later than the horizon
                sobject.records.append(
                    {
                        "Id": _record_id("006", number),
                        "Name": f"{account} - {spec['Product__c']}",
                        "StageName": spec["StageName"],
                        "Type": rng.choice(["New Business", "Existing Business"]),
                        "Amount": spec["Amount"],
                        "CloseDate": close_date,
                        "CreatedDate": created,
                        "Product__c": spec["Product__c"],
                        "Segment__c": spec["Segment__c"],
                    }
                )
            day += timedelta(days=1)
        return sobject


# --- SOQL: the subset the connector sends ------------------------------------------------


class SoqlError(api.BadRequest, ValueError):
    """A query the sandbox cannot run: Salesforce's `errorCode` and message (a 400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


_TOKEN = re.compile(
    r"""\s*(?:(?P<string>'(?:[^'\\]|\\.)*')"""
    r"""|(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))"""
    r"""|(?P<date>\d{4}-\d{2}-\d{2})(?![\dT])"""
    r"""|(?P<number>-?\d+(?:\.\d+)?)(?![\w-])"""
    r"""|(?P<op>!=|<>|<=|>=|=|<|>)"""
    r"""|(?P<punct>[(),])"""
    r"""|(?P<word>[A-Za-z_][\w.]*)"""
    r"""|(?P<other>\S))"""
)


@dataclass
class Soql:
    fields: list[str]
    sobject: SObject
    predicate: Callable[[dict[str, Any]], bool]
    order: list[tuple[str, bool]]  # (field, descending)
    limit: int | None


def parse_soql(soql: str, find_object: Callable[[str], SObject | None]) -> Soql:
    tokens = []
    for found in _TOKEN.finditer(soql):
        if found.lastgroup:
            tokens.append(
                (found.lastgroup, found.group(found.lastgroup), found.start(found.lastgroup))
            )
    return _SoqlParser(soql, tokens, find_object).parse()


class _SoqlParser:
    def __init__(
        self,
        soql: str,
        tokens: list[tuple[str, str, int]],
        find_object: Callable[[str], SObject | None],
    ) -> None:
        self.soql, self.tokens, self.find_object = soql, tokens, find_object
        self.position = 0
        self.sobject: SObject | None = None

    def parse(self) -> Soql:
        self._keyword("select")
        names = [self._word("a field name")]
        while self._peek("punct", ","):
            self.position += 1
            names.append(self._word("a field name"))
        self._keyword("from")
        object_name = self._word("an object name")
        sobject = self.find_object(object_name)
        if sobject is None:
            raise SoqlError(
                "INVALID_TYPE",
                self._located(
                    f"sObject type '{object_name}' is not supported. If you are attempting to use "
                    "a custom object, be sure to append the '__c' after the entity name. Please "
                    "reference your WSDL or the describe call for the appropriate names.",
                    self.position - 1,
                ),
            )
        self.sobject = sobject
        fields = [self._field(name, index) for index, name in enumerate(names, start=1)]
        predicate: Callable[[dict[str, Any]], bool] = lambda record: True  # noqa: E731
        if self._peek_keyword("where"):
            self.position += 1
            predicate = self._expression()
        order: list[tuple[str, bool]] = []
        if self._peek_keyword("order"):
            self.position += 1
            self._keyword("by")
            while True:
                name = self._field(self._word("a field name"), self.position - 1)
                descending = False
                if self._peek_keyword("asc") or self._peek_keyword("desc"):
                    descending = self.tokens[self.position][1].lower() == "desc"
                    self.position += 1
                order.append((name, descending))
                if not self._peek("punct", ","):
                    break
                self.position += 1
        limit = None
        if self._peek_keyword("limit"):
            self.position += 1
            kind, text, _ = self._next()
            if kind != "number":
                self._unexpected(self.position - 1)
            limit = int(text)
        if self.position < len(self.tokens):
            self._unexpected(self.position)
        return Soql(fields, sobject, predicate, order, limit)

    def _expression(self) -> Callable[[dict[str, Any]], bool]:
        terms = [self._term()]
        while self._peek_keyword("and"):
            self.position += 1
            terms.append(self._term())
        if self._peek_keyword("or"):
            self._unsupported(self.position)
        return lambda record: all(term(record) for term in terms)

    def _term(self) -> Callable[[dict[str, Any]], bool]:
        if self._peek("punct", "("):
            self.position += 1
            inner = self._expression()
            if not self._peek("punct", ")"):
                self._unexpected(self.position)
            self.position += 1
            return inner
        if self._peek_keyword("not"):
            self._unsupported(self.position)
        at = self.position
        name = self._field(self._word("a field name"), at)
        kind, op, _ = self._next()
        if kind != "op":
            if kind == "word":
                self._unsupported(self.position - 1)
            self._unexpected(self.position - 1)
        value = self._literal(name)
        return _comparison(name, "!=" if op == "<>" else op, value)

    def _literal(self, name: str) -> Any:
        assert self.sobject is not None
        kind, text, _ = self._next()
        field_type = self.sobject.fields[name]
        if kind == "word" and text.lower() == "null":
            return None
        if field_type in ("date", "datetime"):
            wanted = "date" if field_type == "date" else "datetime"
            if kind != wanted:
                if kind == "word":
                    self._unsupported(self.position - 1)  # date literals such as TODAY
                raise SoqlError(
                    "INVALID_FIELD",
                    self._located(
                        f"value of filter criterion for field '{name}' must be of type "
                        f"{'date' if field_type == 'date' else 'dateTime'} and should not be "
                        "enclosed in quotes",
                        self.position - 1,
                    ),
                )
            return date.fromisoformat(text) if kind == "date" else api.parse_moment(text)
        if field_type in _NUMERIC:
            if kind != "number":
                self._type_error(name, "number")
            return float(text)
        if field_type == "boolean":
            if kind != "word" or text.lower() not in ("true", "false"):
                self._type_error(name, "boolean")
            return text.lower() == "true"
        if kind != "string":
            self._type_error(name, "string")
        return re.sub(r"\\(.)", r"\1", text[1:-1])

    def _field(self, name: str, at: int) -> str:
        assert self.sobject is not None
        if "." in name:
            self._unsupported(at)  # relationship fields
        found = self.sobject.field_name(name)
        if found is None:
            raise SoqlError(
                "INVALID_FIELD",
                self._located(
                    f"No such column '{name}' on entity '{self.sobject.name}'. "
                    "If you are attempting to use a custom field, be sure to append the '__c' "
                    "after the custom field name. Please reference your WSDL or the describe call "
                    "for the appropriate names.",
                    at,
                ),
            )
        return found

    # -- helpers ------------------------------------------------------------------------

    def _next(self) -> tuple[str, str, int]:
        if self.position >= len(self.tokens):
            raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _word(self, expected: str) -> str:
        kind, text, _ = self._next()
        if kind != "word":
            self._unexpected(self.position - 1)
        if self.position < len(self.tokens) and self.tokens[self.position][1] == "(":
            self._unsupported(self.position - 1)  # functions: COUNT(), SUM(), ...
        return text

    def _keyword(self, word: str) -> None:
        kind, text, _ = self._next()
        if kind != "word" or text.lower() != word:
            self._unexpected(self.position - 1)

    def _peek(self, kind: str, text: str) -> bool:
        return (
            self.position < len(self.tokens)
            and self.tokens[self.position][0] == kind
            and self.tokens[self.position][1] == text
        )

    def _peek_keyword(self, word: str) -> bool:
        return (
            self.position < len(self.tokens)
            and self.tokens[self.position][0] == "word"
            and self.tokens[self.position][1].lower() == word
        )

    def _located(self, message: str, index: int) -> str:
        column = self.tokens[index][2] + 1 if 0 <= index < len(self.tokens) else len(self.soql)
        return f"\n{self.soql}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n{message}"

    def _unexpected(self, index: int) -> None:
        text = self.tokens[index][1] if index < len(self.tokens) else "<EOF>"
        raise SoqlError("MALFORMED_QUERY", self._located(f"unexpected token: '{text}'", index))

    def _unsupported(self, index: int) -> None:
        text = self.tokens[index][1] if index < len(self.tokens) else "<EOF>"
        raise SoqlError(
            "MALFORMED_QUERY",
            self._located(
                f"unexpected token: '{text}' (the okr-metrics sandbox understands SELECT of plain "
                "fields, FROM, WHERE comparisons joined by AND, ORDER BY and LIMIT)",
                index,
            ),
        )

    def _type_error(self, name: str, kind: str) -> None:
        raise SoqlError(
            "INVALID_FIELD",
            self._located(
                f"value of filter criterion for field '{name}' must be of type {kind}",
                self.position - 1,
            ),
        )


def _comparison(name: str, op: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    def fold(item: Any) -> Any:
        return item.casefold() if isinstance(item, str) else item  # SOQL text `=` ignores case

    wanted = fold(value)

    def matches(record: dict[str, Any]) -> bool:
        actual = fold(record.get(name))
        if op == "=":
            return actual == wanted
        if op == "!=":
            return actual != wanted
        if actual is None or wanted is None:
            return False
        return {
            "<": actual < wanted,
            "<=": actual <= wanted,
            ">": actual > wanted,
            ">=": actual >= wanted,
        }[op]

    return matches


# --- the HTTP side -----------------------------------------------------------------------


def error_body(status: int, message: str, code: str | None = None) -> list[dict[str, Any]]:
    """Salesforce's error body: `code` when given, else the code of the status (what
    injected faults answer)."""
    if code is not None:
        return [{"message": message, "errorCode": code}]
    if status == 401:
        return [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    if status == 403 and "limit" in message.lower():
        return [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    codes = {
        400: "MALFORMED_QUERY",
        403: "INSUFFICIENT_ACCESS",
        404: "NOT_FOUND",
        429: "REQUEST_LIMIT_EXCEEDED",
        503: "SERVER_UNAVAILABLE",
    }
    return [{"message": message, "errorCode": codes.get(status, "UNKNOWN_EXCEPTION")}]


SALESFORCE = api.Api("application/json;charset=UTF-8", error_body)


def _not_found() -> api.ApiError:
    return api.ApiError("The requested resource does not exist", status=404, code="NOT_FOUND")


def check_auth(request: SandboxRequest) -> SandboxResponse | None:
    """Salesforce's answer to a missing, expired or bad bearer token."""
    if api.token_problem(request, scheme="bearer") is None:
        return None
    headers = {"WWW-Authenticate": 'Token realm="Salesforce", error="invalid_token"'}
    return SALESFORCE.error(401, "", headers=headers)


_VERSION = re.compile(r"^v\d{2}\.\d$")
_BATCH_OPTION = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class _Cursor:
    soql: str
    version: str
    batch: int


class _SalesforceRoutes:
    def __init__(self, salesforce: SalesforceSandboxData) -> None:
        self.salesforce = salesforce
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._results: OrderedDict[tuple[str, int], tuple[Soql, list[dict[str, Any]]]] = (
            OrderedDict()
        )
        self._opened = 0
        self._lock = threading.Lock()

    def query(self, request: SandboxRequest) -> SandboxResponse:
        version = request.path_params["version"]
        if not _VERSION.match(version):
            raise _not_found()
        soql = request.query.get("q", "")
        with self.salesforce._lock:
            self.salesforce.queries.append(soql)
        if not soql.strip():
            raise SoqlError("MALFORMED_QUERY", "A query string is required: q=SELECT ...")
        parsed, _ = self._run(soql)
        batch = self.salesforce.batch_for(parsed.sobject.name)
        option = _BATCH_OPTION.search(request.headers.get("Sforce-Query-Options") or "")
        if option:
            batch = min(batch, max(MIN_REQUESTED_BATCH, min(BATCH_SIZE, int(option.group(1)))))
        with self._lock:
            self._opened += 1
            locator = "01g" + hashlib.sha256(f"{soql}|{self._opened}".encode()).hexdigest()[:15]
            self._cursors[locator] = _Cursor(soql, version, max(1, batch))
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)  # an expired query locator
        return self._page(request, locator, 0)

    def more(self, request: SandboxRequest) -> SandboxResponse:
        locator, _, offset = request.path_params["locator"].rpartition("-")
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or not offset.isdigit():
            raise SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(request, locator, int(offset))

    def describe(self, request: SandboxRequest) -> SandboxResponse:
        version = request.path_params["version"]
        sobject = self.salesforce.sobject(request.path_params["sobject"])
        if sobject is None or not _VERSION.match(version):
            raise _not_found()
        base = f"/services/data/{version}/sobjects/{sobject.name}"
        body = {
            "name": sobject.name,
            "label": sobject.name.removesuffix("__c").replace("_", " "),
            "labelPlural": sobject.name.removesuffix("__c").replace("_", " ") + "s",
            "keyPrefix": sobject.key_prefix,
            "custom": sobject.custom,
            "queryable": True,
            "searchable": True,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
            "fields": [
                {
                    "name": name,
                    "label": name.removesuffix("__c").replace("_", " "),
                    "type": kind,
                    "soapType": _SOAP_TYPES.get(kind, "xsd:string"),
                    "custom": name.endswith("__c"),
                    "nillable": name != "Id",
                    "filterable": True,
                    "groupable": kind not in ("double", "currency", "percent"),
                    "length": 18 if kind == "id" else (255 if kind in _TEXT else 0),
                }
                for name, kind in sobject.fields.items()
            ],
        }
        return SALESFORCE.reply(body)

    # -- helpers ------------------------------------------------------------------------

    def _run(self, soql: str) -> tuple[Soql, list[dict[str, Any]]]:
        key = (soql, self.salesforce.version)
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        parsed = parse_soql(soql, self.salesforce.sobject)
        key = (soql, self.salesforce.version)  # generating Opportunity bumps the version
        matched = [record for record in parsed.sobject.records if parsed.predicate(record)]
        matched.sort(key=lambda record: record["Id"])
        for name, descending in reversed(parsed.order):
            matched.sort(
                key=lambda record, n=name: (record.get(n) is not None, record.get(n) or 0),
                reverse=descending,
            )
        if parsed.limit is not None:
            matched = matched[: parsed.limit]
        with self._lock:
            self._results[key] = (parsed, matched)
            while len(self._results) > 16:
                self._results.popitem(last=False)
        return parsed, matched

    def _page(self, request: SandboxRequest, locator: str, offset: int) -> SandboxResponse:
        with self._lock:
            cursor = self._cursors[locator]
        parsed, matched = self._run(cursor.soql)
        chosen = matched[offset : offset + cursor.batch]
        done = offset + cursor.batch >= len(matched)
        body: dict[str, Any] = {"totalSize": len(matched), "done": done}
        if not done:
            next_offset = offset + cursor.batch
            body["nextRecordsUrl"] = (
                f"/services/data/{cursor.version}/query/{locator}-{next_offset}"
            )
        sobject = parsed.sobject
        body["records"] = [
            {
                "attributes": {
                    "type": sobject.name,
                    "url": f"/services/data/{cursor.version}/sobjects/{sobject.name}/{record['Id']}",
                },
                **{
                    name: _wire_value(record.get(name), sobject.fields[name])
                    for name in parsed.fields
                },
            }
            for record in chosen
        ]
        return SALESFORCE.reply(body)


def register(router: Router, data: SandboxData) -> None:
    """Serve Salesforce's query and describe endpoints from `data.salesforce`."""
    routes = _SalesforceRoutes(SalesforceSandboxData.of(data))
    prefix = "/services/data/{version}"
    for pattern, handler in (
        ("/query", routes.query),
        ("/query/{locator}", routes.more),
        ("/sobjects/{sobject}/describe", routes.describe),
    ):
        SALESFORCE.add(router, "GET", prefix + pattern, handler, auth=check_auth)
