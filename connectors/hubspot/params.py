"""YAML keys of a HubSpot CRM metric.

A metric counts (or sums a `field` of) the records of a CRM `object` per day of its
`date_property`, narrowed by `filters`: each `{property, operator, ...}`, in the shape of
HubSpot's own search filters:

    filters:
      - {property: dealstage, operator: EQ, value: closedwon}         # one value
      - {property: customer_segment, operator: IN, value: [smb, mid_market]}
      - {property: industry, operator: NOT_IN, values: ["Food, drink", retail]}
      - {property: amount, operator: BETWEEN, value: 500, high_value: 5000}
      - {property: contract_start, operator: GTE, value: 2026-10-01}  # a date
      - {property: amount, operator: HAS_PROPERTY}                    # no value

- `IN` / `NOT_IN` take a list, as `value: [a, b]` or `values: [a, b]` (HubSpot's key; one
  of the two). A comma string (`value: "smb, mid_market"`), the older shape, still works:
  it is split on commas and each part stripped, so a value holding a comma needs a list.
- `BETWEEN` takes `value` and `high_value` (HubSpot's `highValue`), both ends included.
- `HAS_PROPERTY` / `NOT_HAS_PROPERTY` take no value.
- Every other operator (EQ, NEQ, LT, LTE, GT, GTE, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN)
  takes one `value`, never a list.

Values are sent as text. A value written as a date (`2026-10-01`) or an ISO datetime
(`2026-10-01T12:00:00Z`, `2026-10-01T14:00:00+02:00`; no offset means UTC) is sent as
epoch milliseconds, which is how HubSpot compares date and datetime properties (a date
property holds midnight UTC of its day); the connector does that, see
`connectors/hubspot/client.py`. The token operators compare text and send dates as
written. A filter of the wrong shape is a `ValueError` here, so `okr lint` reports it at
its file and line.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from okr_metrics.connectors.kit import looks_like_timestamp, parse_timestamp
from okr_metrics.connectors.params import MetricParams

Operator = Literal[
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
    "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
]  # fmt: skip
Scalar = str | int | float | bool

LIST_OPERATORS = ("IN", "NOT_IN")
NO_VALUE_OPERATORS = ("HAS_PROPERTY", "NOT_HAS_PROPERTY")
# Operators that match words in text: their values are sent as written, never as dates.
TOKEN_OPERATORS = ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")
# The list operator to suggest when a one-value operator gets a list.
_LIST_HINT = {"EQ": "IN", "NEQ": "NOT_IN"}


def as_moment(value: Any) -> datetime | None:
    """The UTC instant a filter value written as a date or ISO datetime names, else None.

    A date is midnight UTC of its day (how HubSpot stores date properties); a datetime
    without an offset is UTC. Raises `ValueError` for date-shaped text that is no date
    (`2026-02-30`).
    """
    if not isinstance(value, str) or not looks_like_timestamp(value):
        return None
    found = parse_timestamp(value)
    if isinstance(found, datetime):
        return found.astimezone(timezone.utc)
    return datetime(found.year, found.month, found.day, tzinfo=timezone.utc)


def as_text(value: Scalar) -> str:
    """A value as the search takes it: text, booleans as `true` / `false`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _list_shape(operator: str) -> str:
    return f"{operator} takes a list of values: `value: [a, b]` or `values: [a, b]`"


def _one_shape(operator: str) -> str:
    return f"{operator} takes one value: `value: x`"


class HubSpotFilter(BaseModel):
    """One search filter: which of `value`, `values`, `high_value` it takes is the operator's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    property: str = Field(min_length=1)
    operator: Operator
    value: Scalar | tuple[Scalar, ...] | None = None
    values: tuple[Scalar, ...] | None = None
    high_value: Scalar | tuple[Scalar, ...] | None = None

    @field_validator("value", "values", "high_value", mode="before")
    @classmethod
    def _scalars(cls, raw: Any, info: ValidationInfo) -> Any:
        """Dates and datetimes (from Python, or a YAML loader that makes them) as ISO text."""

        def one(item: Any) -> Any:
            if isinstance(item, datetime | date):
                return item.isoformat()
            if item is None or isinstance(item, dict | list | tuple):
                raise ValueError("a list item must be one value (text, a number, a date)")
            return item

        if isinstance(raw, list | tuple):
            return tuple(one(item) for item in raw)
        if isinstance(raw, dict):
            raise ValueError("expected a value (text, a number, a date) or a list of values")
        if info.field_name == "values" and raw is not None:
            raise ValueError("`values` takes a list: `values: [a, b]`")
        return raw if raw is None else one(raw)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave out unset `values` / `high_value`, so a KR's dump (and definition hash) of
        the older shapes stays as it was."""
        dumped = handler(self)
        for name in ("values", "high_value"):
            if name in dumped and dumped[name] is None:
                del dumped[name]
        return dumped

    @model_validator(mode="after")
    def _shape(self) -> HubSpotFilter:
        operator = self.operator
        if operator in LIST_OPERATORS:
            self._check_list()
        elif operator in NO_VALUE_OPERATORS:
            if (self.value, self.values, self.high_value) != (None, None, None):
                raise ValueError(f"{operator} takes no value")
        elif operator == "BETWEEN":
            self._check_between()
        else:
            if self.values is not None:
                raise ValueError(f"{_one_shape(operator)}, not `values`{self._list_hint()}")
            if self.high_value is not None:
                hint = " (for a range use BETWEEN)" if operator not in TOKEN_OPERATORS else ""
                raise ValueError(f"{_one_shape(operator)}, not `high_value`{hint}")
            if isinstance(self.value, tuple):
                raise ValueError(f"{operator} takes one value, not a list{self._list_hint()}")
            if self.value is None:
                raise ValueError(_one_shape(operator))
        if operator in LIST_OPERATORS:
            sent: tuple[Any, ...] = self.search_values()
        else:
            sent = () if operator in TOKEN_OPERATORS else (self.value, self.high_value)
        for part in sent:
            try:
                as_moment(part)
            except ValueError:
                raise ValueError(
                    f"`{part}` is not a date: write YYYY-MM-DD, or an ISO datetime "
                    "such as 2026-10-01T12:00:00Z"
                ) from None
        return self

    def _list_hint(self) -> str:
        other = _LIST_HINT.get(self.operator)
        return f" (for a list use {other}: `values: [a, b]`)" if other else ""

    def _check_list(self) -> None:
        shape = _list_shape(self.operator)
        if self.value is not None and self.values is not None:
            raise ValueError(f"{shape}, not both")
        if self.high_value is not None:
            raise ValueError(f"{shape}, not `high_value`")
        given = self.values if self.values is not None else self.value
        if isinstance(given, tuple) and any(as_text(item).strip() == "" for item in given):
            raise ValueError(f"{shape}, none of them empty")
        if not self.search_values():
            raise ValueError(shape)

    def _check_between(self) -> None:
        shape = "BETWEEN takes `value` and `high_value`"
        if self.values is not None:
            raise ValueError(f"{shape}, not `values`")
        if isinstance(self.value, tuple) or isinstance(self.high_value, tuple):
            raise ValueError(f"{shape}, one value each (not a list)")
        if self.value is None or self.high_value is None:
            raise ValueError(shape)
        low, high = self.value, self.high_value
        try:
            ends: tuple[Any, Any] = (as_moment(low), as_moment(high))
        except ValueError:
            return  # reported with the other dates
        if None in ends:
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
                return  # text, or a number against a date: HubSpot's to compare
            ends = (low, high)
        if ends[0] > ends[1]:
            raise ValueError(f"{shape}, `value` not above `high_value` (got {low} above {high})")

    def search_values(self) -> tuple[str, ...]:
        """The values of an IN / NOT_IN filter as text: a list as given, a comma string split."""
        if self.values is not None:
            return tuple(as_text(item) for item in self.values)
        if isinstance(self.value, tuple):
            return tuple(as_text(item) for item in self.value)
        if isinstance(self.value, str):
            return tuple(part.strip() for part in self.value.split(",") if part.strip())
        return () if self.value is None else (as_text(self.value),)

    def key_params(self) -> dict[str, Any]:
        """What the metric key holds of this filter.

        The keys of the shapes older versions took stay exactly as they were (rows in a
        warehouse are stored by metric key): `{property, operator, value}` with the value
        as written. A list (`value: [a, b]` or `values: [a, b]`) is keyed like the comma
        string `value: "a,b"` it means, unless one of its values holds a comma or blank
        ends; then it is keyed as `values: [...]`.
        """
        found: dict[str, Any] = {"property": self.property, "operator": self.operator}
        if self.operator in LIST_OPERATORS and (
            self.values is not None or isinstance(self.value, tuple)
        ):
            texts = list(self.search_values())
            plain = all(text == text.strip() and "," not in text for text in texts)
            found.update({"value": ",".join(texts)} if plain else {"values": texts})
            return found
        if self.value is not None:
            found["value"] = self.value
        if self.high_value is not None:
            found["high_value"] = self.high_value
        return found


class HubSpotMetric(MetricParams):
    source: Literal["hubspot"]
    object: str = Field(default="deals", min_length=1)
    filters: tuple[HubSpotFilter, ...] = ()
    date_property: str = Field(default="closedate", min_length=1)
    measure: Literal["count", "sum"] = "count"
    field: str | None = None

    def series_kind(self) -> str:
        return "count" if self.measure == "count" else "amount"

    def query_params(self) -> dict[str, Any]:
        found = super().query_params()
        if self.filters:
            found["filters"] = [item.key_params() for item in self.filters]
        return found

    @model_validator(mode="after")
    def _field_for_sum(self) -> HubSpotMetric:
        if self.measure == "sum" and not self.field:
            raise ValueError("`measure: sum` needs `field`")
        return self
