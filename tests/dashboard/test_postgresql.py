"""The same pages over PostgreSQL: the built warehouse's rows copied into a fresh schema
must give the same objectives, KRs, scores, statuses, weeks and quarters as on SQLite."""

from __future__ import annotations

import pytest
from pagetools import get, parse
from sqlalchemy import create_engine, select

from okr_metrics.pipelines.dashboard.web import create_app
from okr_metrics.warehouse.schema import metadata
from okr_metrics.warehouse.store import Warehouse

# Every table the pipeline writes, so a new one the pages read is copied too.
TABLES = tuple(name for name in metadata.tables if name != "schema_version")


def attributes(html: str) -> list[tuple]:
    """Every element's data attributes and data-field texts, in page order."""
    page = parse(html)
    found = []
    for element in page.walk():
        data = tuple(sorted((k, v) for k, v in element.attrs.items() if k.startswith("data-")))
        if data:
            text = element.text.strip() if "data-field" in element.attrs else ""
            found.append((element.tag, data, text))
    return found


@pytest.mark.postgresql
def test_the_pages_read_the_same_on_postgresql(built_warehouse, postgres_schemas, serve):
    source = create_engine(f"sqlite:///{built_warehouse}")
    with postgres_schemas() as url:
        target = Warehouse(url)
        target.ensure_schema()
        with source.connect() as reading, target.engine.begin() as writing:
            for name in TABLES:
                table = metadata.tables[name]
                rows = [dict(row) for row in reading.execute(select(table)).mappings()]
                if rows:
                    writing.execute(table.insert(), rows)
        on_sqlite = serve(create_app(f"sqlite:///{built_warehouse}"))
        on_postgres = serve(create_app(target))
        for path in (
            "/",
            "/?as_of=2026-10-10&team=growth",
            "/?as_of=2026-09-25",
            "/kr/2026-Q4/mobile-releases",
            "/weekly",
            "/alignment",
            "/quarters",
        ):
            expected = get(on_sqlite + path)
            shown = get(on_postgres + path)
            assert shown.status_code == expected.status_code == 200, path
            assert attributes(shown.text) == attributes(expected.text), path
        target.close()
    source.dispose()
