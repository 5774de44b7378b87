"""Benchmark: how often, and how long, a 1,000-KR run parses its definitions.

Not a test: it prints figures. It writes a quarter of 1,000 KRs (250 objectives x 4,
manual check-ins, so no HTTP is involved) and runs the nightly run for one day
(`run_window`, one Dagster run in this process) twice: first with the parse cache off,
every caller parsing the files again (the baseline), then with it on, as shipped. It
prints, for each, how many times the files were parsed and the seconds spent parsing,
and the ratio. It also times one parse with the YAML loader in use (libyaml's
`CSafeLoader` when PyYAML has it) and with PyYAML's pure-Python loader.

    python benchmarks/definitions_load.py            # target: 1 parse per run
    python benchmarks/definitions_load.py --krs 4000
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DAY = date(2026, 10, 20)


def quarter_text(krs: int) -> str:
    lines = ["quarter: 2026-Q4", "timezone: UTC", "objectives:"]
    for index in range(0, krs, 4):
        lines += [
            f"  - id: objective-{index // 4:04d}",
            f"    title: Objective {index // 4}",
            f"    owner: team-{index // 4 % 12:02d}",
            "    key_results:",
        ]
        for kr in range(index, min(index + 4, krs)):
            lines += [
                f"      - id: kr-{kr:04d}",
                f"        title: Key result {kr} from 0 to 100",
                "        type: increase",
                "        start: 0",
                "        target: 100",
                "        metric: {source: manual, aggregate: latest}",
            ]
    return "\n".join(lines) + "\n"


def checkins_text(krs: int) -> str:
    rows = ["kr_id,date,value,note"]
    rows += [f"kr-{kr:04d},2026-10-0{1 + kr % 9},{kr % 100},weekly" for kr in range(krs)]
    return "\n".join(rows) + "\n"


class ParseMeter:
    """Counts and times `loader._load`, where every parse of the definitions happens."""

    def __init__(self, loader: Any) -> None:
        self.loader, self.original = loader, loader._load
        self.parses, self.seconds = 0, 0.0

    def __enter__(self) -> ParseMeter:
        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return self.original(*args)
            finally:
                self.parses += 1
                self.seconds += time.perf_counter() - started

        self.loader._load = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self.loader._load = self.original


def run_once(settings: Any, cache: bool) -> tuple[int, float, float]:
    from okr_metrics.pipelines.cli.main import run_window
    from okr_metrics.pipelines.definitions import load_definitions, loader

    loader._CACHE.clear()
    size = loader._CACHE_SIZE
    loader._CACHE_SIZE = size if cache else 0
    try:
        with ParseMeter(loader) as meter:
            started = time.perf_counter()
            # What `okr run` does: check the definitions, then the one Dagster run.
            load_definitions(settings.definitions_path)
            outcome = run_window(DAY, DAY, settings)
            wall = time.perf_counter() - started
    finally:
        loader._CACHE_SIZE = size
    if not outcome.success:
        raise SystemExit(f"the run failed: {outcome.failure}")
    return meter.parses, meter.seconds, wall


def pure_python_loader(loader: Any) -> type:
    """The definitions' line-keeping loader built on PyYAML's pure-Python SafeLoader."""
    members = {
        name: getattr(loader._LineLoader, name)
        for name in ("construct_mapping", "construct_sequence")
    }
    python_loader: Any = type("PythonLineLoader", (yaml.SafeLoader,), members)
    for tag, method in (
        (yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, members["construct_mapping"]),
        (yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, members["construct_sequence"]),
    ):
        python_loader.add_constructor(tag, method)
    python_loader.yaml_implicit_resolvers = loader._LineLoader.yaml_implicit_resolvers
    return python_loader


def one_parse(path: Path, loader: Any, repeat: int = 3) -> float:
    from okr_metrics.pipelines.definitions import load_definitions

    best = float("inf")
    for _ in range(repeat):
        loader._CACHE.clear()
        started = time.perf_counter()
        found = load_definitions(path)
        best = min(best, time.perf_counter() - started)
        assert found.files, [str(p) for p in found.errors[:3]]
    return best


def timed_with(loader: Any, base: type, line_loader: type, work: Callable[[], float]) -> float:
    saved = loader._Base, loader._LineLoader
    loader._Base, loader._LineLoader = base, line_loader
    try:
        return work()
    finally:
        loader._Base, loader._LineLoader = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--krs", type=int, default=1000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="dagster")  # beta notices, once per asset
    logging.getLogger("okr_metrics").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="okr-defs-bench-"))
    try:
        defs = work / "okr_defs"
        (defs / "checkins").mkdir(parents=True)
        (defs / "2026-Q4.yaml").write_text(quarter_text(args.krs), encoding="utf-8")
        (defs / "checkins" / "2026-Q4.csv").write_text(checkins_text(args.krs), encoding="utf-8")
        home = work / "dagster"
        home.mkdir()
        shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
        os.environ["OKR_DEFS"] = str(defs)
        os.environ["OKR_WAREHOUSE_URL"] = f"sqlite:///{work / 'warehouse.db'}"

        from okr_metrics.pipelines.definitions import loader
        from okr_metrics.pipelines.settings import Settings

        settings = Settings.from_env()
        size = (defs / "2026-Q4.yaml").stat().st_size
        print(f"definitions: {args.krs:,} KRs, {size:,} bytes; one nightly run for {DAY}")
        c_parse = one_parse(defs, loader)
        python_parse = timed_with(
            loader, yaml.SafeLoader, pure_python_loader(loader), lambda: one_parse(defs, loader)
        )
        print(f"one parse, {loader._Base.__name__} (in use): {c_parse:.3f} s")
        print(f"one parse, SafeLoader (pure Python):    {python_parse:.3f} s")
        run_once(settings, cache=True)  # warm up: imports, the warehouse's schema
        before = run_once(settings, cache=False)
        after = run_once(settings, cache=True)
        for label, (parses, seconds, wall) in (("no cache (baseline)", before), ("cache", after)):
            print(f"{label:<20} {parses:>3} parses, {seconds:6.3f} s parsing, run {wall:6.2f} s")
        print(
            f"parses per run: {before[0]} -> {after[0]}; parsing time ratio "
            f"{before[1] / max(after[1], 1e-9):.1f}x; run time ratio {before[2] / after[2]:.2f}x"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
