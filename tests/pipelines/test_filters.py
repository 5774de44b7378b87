"""HubSpot and GA4 filters in their APIs' own shapes, linted and scored through the pipeline.

The sandbox holds a handful of hand-written deals and GA rows; every expected value below
is counted by hand from them.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from okr_metrics.pipelines.cli.main import run_window
from okr_metrics.pipelines.definitions import load_definitions
from okr_metrics.pipelines.vocabulary.quarters import Quarter
from okr_metrics.warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
Q3 = Quarter.parse("2026-Q3")

DEFINITIONS = """\
quarter: 2026-Q3
objectives:
  - id: sales
    title: Win the small and mid-sized customers
    owner: sales
    key_results:
      - id: segment-deals
        title: 10 SMB and mid-market deals won
        type: increase
        start: 0
        target: 10
        metric:
          source: hubspot
          filters:
            - {property: dealstage, operator: EQ, value: closedwon}
            - {property: customer_segment, operator: IN, value: [smb, mid-market]}
      - id: non-enterprise-revenue
        title: 10,000 in deals outside enterprise
        type: increase
        start: 0
        target: 10000
        metric:
          source: hubspot
          filters: [{property: customer_segment, operator: NOT_IN, values: [enterprise]}]
          measure: sum
          field: amount
      - id: mid-size-deals
        title: 4 deals between 1,000 and 5,000
        type: increase
        start: 0
        target: 4
        metric:
          source: hubspot
          filters:
            - {property: amount, operator: BETWEEN, value: 1000, high_value: 5000}
  - id: web
    title: People find the pricing
    owner: growth
    key_results:
      - id: pricing-views
        title: 100 views of the pricing pages
        type: increase
        start: 0
        target: 100
        metric:
          source: google_analytics
          property: "555"
          metric: screenPageViews
          filter: {pagePath: {contains: /pricing}}
      - id: non-ios-views
        title: 40 page views outside iOS
        type: increase
        start: 0
        target: 40
        metric:
          source: google_analytics
          property: "555"
          metric: screenPageViews
          filter: {platform: {not: [iOS]}}
"""

DEALS = [
    {"dealstage": "closedwon", "customer_segment": "smb", "amount": 500, "closedate": "2026-07-10T10:00:00Z"},
    {"dealstage": "closedwon", "customer_segment": "mid-market", "amount": 3000, "closedate": "2026-07-10T15:00:00Z"},
    {"dealstage": "closedwon", "customer_segment": "enterprise", "amount": 20000, "closedate": "2026-08-01T09:00:00Z"},
    {"dealstage": "closedlost", "customer_segment": "smb", "amount": 800, "closedate": "2026-08-02T09:00:00Z"},
    {"dealstage": "closedwon", "customer_segment": "smb", "amount": 1200, "closedate": "2026-09-15T09:00:00Z"},
]  # fmt: skip

GA_ROWS = [
    {"date": "2026-07-01", "pagePath": "/pricing", "platform": "web", "screenPageViews": 10},
    {"date": "2026-07-01", "pagePath": "/pricing/enterprise", "platform": "iOS", "screenPageViews": 5},
    {"date": "2026-07-02", "pagePath": "/blog/pricing-tips", "platform": "Android", "screenPageViews": 3},
    {"date": "2026-07-02", "pagePath": "/docs", "platform": "web", "screenPageViews": 7},
    {"date": "2026-08-15", "pagePath": "/Pricing", "platform": "web", "screenPageViews": 4},
]  # fmt: skip


@pytest.fixture
def filtered(tmp_path, sandbox, monkeypatch, warehouse_url):
    defs = tmp_path / "okr_defs"
    defs.mkdir()
    (defs / "2026-Q3.yaml").write_text(DEFINITIONS, encoding="utf-8")
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    for name, value in {
        "OKR_DEFS": str(defs),
        "OKR_WAREHOUSE_URL": warehouse_url,
        "DAGSTER_HOME": str(home),
        "HUBSPOT_API_URL": sandbox.url,
        "HUBSPOT_ACCESS_TOKEN": "filters-token",
        "GA_API_URL": sandbox.url,
        "GA_ACCESS_TOKEN": "filters-token",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    sandbox.data.hubspot.set_records("deals", DEALS)
    sandbox.data.google_analytics.set_rows("555", GA_ROWS)
    return defs, Warehouse(warehouse_url)


def values_on(warehouse: Warehouse, day: date) -> dict[str, tuple[float, float]]:
    frame = warehouse.read_kr_scores(day, day)
    return {row["kr_id"]: (row["value"], row["score"]) for row in frame.to_dict("records")}


def test_filters_in_their_apis_shapes_lint_clean_and_score_by_hand(filtered):
    defs, warehouse = filtered
    assert [str(problem) for problem in load_definitions(defs).problems] == []
    outcome = run_window(Q3.start, Q3.end)
    assert outcome.success, outcome.failure
    assert outcome.exit_code == 0
    assert outcome.sources == {"google_analytics": "ok", "hubspot": "ok"}

    assert values_on(warehouse, date(2026, 7, 31)) == {
        "segment-deals": (2, 0.2),  # the smb and mid-market deals won on 07-10
        "non-enterprise-revenue": (3500, 0.35),  # 500 + 3,000
        "mid-size-deals": (1, 0.25),  # 3,000
        "pricing-views": (18, 0.18),  # /pricing 10, /pricing/enterprise 5, /blog/pricing-tips 3
        "non-ios-views": (20, 0.5),  # 10 + 3 + 7
    }
    assert values_on(warehouse, Q3.end) == {
        "segment-deals": (3, 0.3),  # + the smb deal won on 09-15; never the lost one
        "non-enterprise-revenue": (5500, 0.55),  # + 800 (lost, still not enterprise) + 1,200
        "mid-size-deals": (2, 0.5),  # + 1,200 (BETWEEN includes both ends)
        "pricing-views": (18, 0.18),  # /Pricing is another page: matching is case-sensitive
        "non-ios-views": (24, 0.6),  # + 4 on 08-15
    }
