"""How a KR's values are written: its `format` and `unit` (docs/dashboard.md, "Units").

`format` is `number`, `percent` (a 0..1 share, written 85%), `duration` (seconds, or the
`unit` the values are in: min, h) or `currency:CODE` with an ISO 4217 code. `unit` is a
label for a number (`users`, `tickets`) or a duration's unit. The model (`model.py`)
validates them; the dashboard, the report and `okr scorecard` write values with them
(`dashboard/formats.py`). Neither changes a score, so neither is in the definition hash.
"""

from __future__ import annotations

import re

FORMATS = ("number", "percent", "duration", "currency:CODE")
UNIT_MAX_LENGTH = 30

# A duration's unit: the seconds one value holds.
DURATION_UNITS = {
    "s": 1,
    "sec": 1,
    "seconds": 1,
    "min": 60,
    "minutes": 60,
    "h": 3600,
    "hours": 3600,
}
# Units that say a value is a 0..1 share.
SHARE_UNITS = {"percent", "share", "ratio", "%"}

# ISO 4217's active codes (funds and metals included, as the standard lists them).
_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
    MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED
    VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX
    YER ZAR ZMW ZWG ZWL
"""
CURRENCY_CODES = frozenset(_ISO_4217.split())

_CURRENCY = re.compile(r"^currency:(.*)$")


def currency_of(value_format: str | None) -> str | None:
    """The code of a `currency:CODE` format, else None."""
    match = _CURRENCY.match(value_format or "")
    return match.group(1) if match else None


def check_format(value: str) -> str:
    """`value` if it is a format, else a ValueError saying what is."""
    code = currency_of(value)
    if code is not None:
        if code not in CURRENCY_CODES:
            raise ValueError(
                f"{code!r} is not an ISO 4217 currency code (write it in capitals: "
                "currency:EUR, currency:USD, currency:GBP ...)"
            )
        return value
    if value not in FORMATS[:3]:
        raise ValueError(
            f"unknown format {value!r} (use number, percent, duration or currency:CODE, "
            "such as currency:EUR)"
        )
    return value


def check_unit(unit: str, value_format: str | None) -> str:
    """`unit` if it fits `value_format`, else a ValueError saying what does."""
    if unit != unit.strip() or not unit:
        raise ValueError("a unit is a word or two, without spaces around it")
    if value_format == "percent":
        raise ValueError("format percent takes no unit: its values are 0..1 shares, written 85%")
    if currency_of(value_format) is not None:
        raise ValueError("a currency format is its own unit: leave `unit` out")
    if value_format == "duration" and unit.lower() not in DURATION_UNITS:
        raise ValueError(
            f"a duration's unit is what its values count: {', '.join(DURATION_UNITS)} "
            "(seconds when none is given)"
        )
    return unit
