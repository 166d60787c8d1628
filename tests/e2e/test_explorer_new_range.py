"""In a real browser: the behaviour view of a date range whose rollups take a while draws
the other charts at once, says the rest is coming, and redraws itself once they are built.

The server's rollups of a new range are held back by a `sitecustomize` module given to
its process only (the app's code is unchanged), until the test lets them through: on the
small sample shop they would be built before anyone could see the page wait for them. The
same module keeps the day tables from answering, as for a filter they cannot answer (a
filter on dates alone reads them once they are written).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona_engine.features import compute_customer_features
from persona_engine.store import open_store
from sample_data.generator import generate_shop
from tests.e2e.conftest import ROOT, start_server, wait_for_app

GATE_S = 60.0  # the longest a gate holds a range's rollups back
PENDING = "this chart appears in a few seconds"
CHARTS = 13  # RFM grid and groups, segments, funnel, 2 cart, 3 order mixes, categories, weekday x hour, months, cohorts


def slow_rollups(gates: Path) -> str:
    """The server's `sitecustomize`: a new range's thread builds its order rollups once the
    file `orders` is in `gates`, its session rollups once `sessions` is (GATE_S at most);
    the usual periods prepared when the explorer opens are not held (the server would take
    as long to stop). The day tables answer no chart."""
    return f'''
import threading
import time
from pathlib import Path

from persona_engine import explore

_GATES = Path({str(gates)!r})
_build, _build_orders = explore._build_range, explore._build_order_rollups


def _held(gate):
    if threading.current_thread().name == "explorer-range-cubes":
        deadline = time.monotonic() + {GATE_S}
        while not (_GATES / gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _slow(cur, prefix, create, start, end, templates):
    if tuple(templates) == explore._RANGE_SESSION_SQL:
        _held("sessions")
    _build(cur, prefix, create, start, end, templates)


def _slow_orders(cur, prefix, key, start, end):
    _held("orders")
    _build_orders(cur, prefix, key, start, end)


explore._build_range = _slow
explore._build_order_rollups = _slow_orders
explore._range_days = lambda *args, **kwargs: None
'''


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The app's URL, and the folder of the gates that let a new range's rollups through."""
    folder = tmp_path_factory.mktemp("slow_rollups")
    db = folder / "shop.duckdb"
    s = open_store(db)
    cur = s.cursor()
    generate_shop(cur, n_customers=3000, seed=42)
    compute_customer_features(cur)
    s.close()
    hooks, gates = folder / "hooks", folder / "gates"
    hooks.mkdir()
    gates.mkdir()
    (hooks / "sitecustomize.py").write_text(slow_rollups(gates))
    path = os.pathsep.join(p for p in (str(hooks), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc, url = start_server(db, {"PYTHONPATH": path})
    yield url, gates
    for gate in ("orders", "sessions"):  # a range still held back would keep the server up
        (gates / gate).touch()
    proc.terminate()
    proc.wait(timeout=10)


def test_behaviour_charts_of_a_new_range_come_by_themselves(slow_server, page):
    url, gates = slow_server
    page.goto(f"{url}/explorer?start=2026-05-01&end=2026-06-15&view=behaviour")
    page.get_by_text("RFM grid: customers per cell, colour = revenue").wait_for(timeout=60_000)
    # The charts that read the range's rollups wait in their place (each box is written
    # as the run reaches it), the others are drawn.
    waiting = "([pending, n]) => document.body.innerText.split(pending).length - 1 === n"
    page.wait_for_function(waiting, arg=[PENDING, 8], timeout=60_000)
    assert page.get_by_text("Sessions funnel").count() == 1
    # Nobody clicks: the page redraws itself once the order rollups are built (order
    # mixes, categories, weekday x hour), then once the session rollups are.
    (gates / "orders").touch()
    page.wait_for_function(waiting, arg=[PENDING, 3], timeout=60_000)
    (gates / "sessions").touch()
    page.wait_for_function(
        "([pending, charts]) => !document.body.innerText.includes(pending)"
        " && document.querySelectorAll(\"[data-testid='stPlotlyChart']\").length >= charts",
        arg=[PENDING, CHARTS], timeout=60_000,
    )
    wait_for_app(page)
    funnel = page.locator("[data-testid='stPlotlyChart']").filter(has=page.locator(".funnellayer"))
    assert funnel.count() == 1
