"""In a real browser: the behaviour view of a date range whose rollups take a while draws
the other charts at once, says the rest is coming, and redraws itself once they are built.

The server's rollups of a new range are slowed down by a `sitecustomize` module given to
its process only (the app's code is unchanged): on the small sample shop they would be
built before anyone could see the page wait for them. The same module keeps the day tables
from answering, as for a filter they cannot answer (a filter on dates alone reads them
once they are written).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from persona_engine.features import compute_customer_features
from persona_engine.store import open_store
from sample_data.generator import generate_shop
from tests.e2e.conftest import ROOT, start_server, wait_for_app

DELAY_S = 4.0  # each of the order rollups and the session rollups
PENDING = "this chart appears in a few seconds"
CHARTS = 13  # RFM grid and groups, segments, funnel, 2 cart, 3 order mixes, categories, weekday x hour, months, cohorts
# Only a new range's thread is slowed down, not the usual periods prepared when the
# explorer opens (the server would take as long to stop).
SLOW_ROLLUPS = f'''
import threading
import time

from persona_engine import explore

_build, _build_orders = explore._build_range, explore._build_order_rollups


def _slow(cur, prefix, create, start, end, templates):
    if threading.current_thread().name == "explorer-range-cubes" and tuple(templates) == explore._RANGE_SESSION_SQL:
        time.sleep({DELAY_S})
    _build(cur, prefix, create, start, end, templates)


def _slow_orders(cur, prefix, key, start, end):
    if threading.current_thread().name == "explorer-range-cubes":
        time.sleep({DELAY_S})
    _build_orders(cur, prefix, key, start, end)


explore._build_range = _slow
explore._build_order_rollups = _slow_orders
explore._range_days = lambda *args, **kwargs: None
'''


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("slow_rollups")
    db = folder / "shop.duckdb"
    s = open_store(db)
    cur = s.cursor()
    generate_shop(cur, n_customers=3000, seed=42)
    compute_customer_features(cur)
    s.close()
    hooks = folder / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_ROLLUPS)
    path = os.pathsep.join(p for p in (str(hooks), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc, url = start_server(db, {"PYTHONPATH": path})
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_behaviour_charts_of_a_new_range_come_by_themselves(slow_server, page):
    page.goto(f"{slow_server}/explorer?start=2026-05-01&end=2026-06-15&view=behaviour")
    page.get_by_text("RFM grid: customers per cell, colour = revenue").wait_for(timeout=60_000)
    # The charts that read the range's rollups wait in their place (each box is written
    # as the run reaches it), the others are drawn.
    waiting = "([pending, n]) => document.body.innerText.split(pending).length - 1 === n"
    page.wait_for_function(waiting, arg=[PENDING, 8], timeout=60_000)
    assert page.get_by_text("Sessions funnel").count() == 1
    # Nobody clicks: the page redraws itself once the order rollups are built (order
    # mixes, categories, weekday x hour), then once the session rollups are.
    page.wait_for_function(waiting, arg=[PENDING, 3], timeout=60_000)
    page.wait_for_function(
        "([pending, charts]) => !document.body.innerText.includes(pending)"
        " && document.querySelectorAll(\"[data-testid='stPlotlyChart']\").length >= charts",
        arg=[PENDING, CHARTS], timeout=60_000,
    )
    wait_for_app(page)
    funnel = page.locator("[data-testid='stPlotlyChart']").filter(has=page.locator(".funnellayer"))
    assert funnel.count() == 1
