"""The manual connector's contract case: check-ins of one KR in a scratch CSV file."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path

from okr_metrics.connectors.base import SourceSettings
from okr_metrics.connectors.manual.params import ManualMetric


class ManualCase:
    source = "manual"
    http = False  # no API: the HTTP tests skip it
    secret = "contract-secret-token"
    window = (date(2026, 10, 1), date(2026, 10, 10))
    empty_is_zero = False  # only check-in days have data
    kr_id = "contract-kr"

    def __init__(self) -> None:
        self._folder: Path | None = None

    @property
    def path(self) -> Path:
        """`checkins/2026-Q4.csv` in a scratch folder, made on first use, removed at exit."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="okr-contract-manual-"))
            atexit.register(shutil.rmtree, self._folder, ignore_errors=True)
        return self._folder / "checkins" / "2026-Q4.csv"

    def settings(self, url: str) -> SourceSettings:
        return SourceSettings()

    def metric(self) -> ManualMetric:
        return ManualMetric(source="manual")

    def request_context(self) -> dict:
        """What the pipeline tells a check-in series: its KR, quarter and definitions folder."""
        return {
            "kr_id": self.kr_id,
            "quarter": "2026-Q4",
            "sibling_kr_ids": (self.kr_id, "other-kr"),
            "definitions_root": self.path.parent.parent,
        }

    def records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        # One check-in a KR a day (a second is an error); another KR's rows are not its.
        days = self._days()
        rows = [f"{self.kr_id},{day},3,weekly survey" for day in days]
        rows += [f"other-kr,{day},0.5," for day in days]
        self._write(rows)
        return [], {day: 3.0 for day in days}

    def no_records(self, url: str) -> tuple[list[dict], dict[date, float]]:
        self._write([f"other-kr,{day},0.5," for day in self._days()])
        return [], {}

    def seed_bad(self) -> tuple[str, dict[date, float]]:
        """One bad row among good ones: where it is, and the series the good rows make."""
        self._write([f"{self.kr_id},2026-10-01,0.4,", f"{self.kr_id},2026-10-02,forty,"])
        return f"{self.path}:3", {date(2026, 10, 1): 0.4}

    def seed_unreadable(self) -> str:
        """A file that cannot be read as a whole (a bad header): where it says so."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("kr,day,value\ncontract-kr,2026-10-01,1\n", encoding="utf-8")
        return f"{self.path}:1"

    def _write(self, rows: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(["kr_id,date,value,note", *rows]) + "\n", encoding="utf-8")

    def _days(self) -> list[date]:
        start, end = self.window
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]


CASE = ManualCase()
