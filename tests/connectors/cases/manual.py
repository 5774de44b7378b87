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
    path_prefix = None
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

    def settings(self, sandbox) -> SourceSettings:
        return SourceSettings()

    def metric(self) -> ManualMetric:
        return ManualMetric(
            source="manual",
            kr_id=self.kr_id,
            quarter="2026-Q4",
            checkins_path=str(self.path),
            quarter_kr_ids=(self.kr_id, "other-kr"),
        )

    def seed(self, sandbox, records_per_day: int) -> dict[date, float]:
        # One check-in a KR a day (a second is an error): its value is the records' count.
        days = self._days()
        rows = [f"{self.kr_id},{day},{records_per_day},weekly survey" for day in days]
        rows += [f"other-kr,{day},0.5," for day in days]
        self._write(rows)
        return {day: float(records_per_day) for day in days}

    def seed_empty(self, sandbox) -> None:
        self._write([f"other-kr,{day},0.5," for day in self._days()])

    def seed_bad(self, sandbox) -> tuple[str, dict[date, float]]:
        """One bad row among good ones: where it is, and the series the good rows make."""
        self._write([f"{self.kr_id},2026-10-01,0.4,", f"{self.kr_id},2026-10-02,forty,"])
        return f"{self.path}:3", {date(2026, 10, 1): 0.4}

    def seed_unreadable(self, sandbox) -> str:
        """A file that cannot be read as a whole (a bad header): where it says so."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("kr,day,value\ncontract-kr,2026-10-01,1\n", encoding="utf-8")
        return f"{self.path}:1"

    def page_size(self, sandbox, size: int) -> None:
        pass  # one file, no pages

    def _write(self, rows: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(["kr_id,date,value,note", *rows]) + "\n", encoding="utf-8")

    def _days(self) -> list[date]:
        start, end = self.window
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]


CASE = ManualCase()
