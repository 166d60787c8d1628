"""The Impact and Actions pages and the persona's impact panel, through AppTest widget keys,
plus the Impact page's formatting and colouring rules on hand-made rows.

The shop is the 3,000-customer sample of `sample_db`, copied per test (pages write actions),
with personas made by hand: one per planted archetype (create_persona + members from
sample_truth, as clustering would approximately find them) and a "Dormant" persona of
customers with no session and no order around the planted action, whose rates have empty
denominators. The page must show the engine's numbers, so expected values come from
persona_engine.kpis on the same file, formatted as hand-written strings where the format
itself is the point.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from persona_engine import auth, kpis
from persona_engine.actions import get_action, list_actions, update_action
from persona_engine.features import compute_customer_features
from persona_engine.personas import create_persona
from persona_engine.playbook import load_playbook
from persona_engine.store import open_store
from tests.conftest import open_page

PLANTED_START = date(2026, 3, 2)  # sample_data.archetypes.PLANTED_ACTION.starts_on
ARCHETYPE_PERSONAS = {  # archetype -> (name, nickname)
    "bargain_hunter": ("Bargain hunters", "Frugal Fred"),
    "loyal_premium": ("Loyal premium", "Premium Paula"),
    "busy_parent": ("Busy parents", "Busy Bea"),
    "gift_buyer": ("Gift buyers", "Gifting Gus"),
    "window_shopper": ("Window shoppers", "Browsing Bo"),
}
DORMANT_SIZE = 40


@pytest.fixture(scope="module")
def personas_db(sample_db, tmp_path_factory) -> Path:
    """The sample shop with features, five archetype personas and a dormant one."""
    path = tmp_path_factory.mktemp("impact") / "template.duckdb"
    shutil.copy(sample_db, path)
    s = open_store(path)
    cur = s.cursor()
    compute_customer_features(cur)
    truth = cur.execute(
        "SELECT t.customer_id, t.archetype FROM sample_truth t "
        "JOIN analysis_customers c USING (customer_id) ORDER BY 1").df()
    for archetype, (name, nickname) in ARCHETYPE_PERSONAS.items():
        members = truth.loc[truth["archetype"] == archetype, "customer_id"].tolist()
        create_persona(cur, {"name": name, "nickname": nickname}, "setup", members=members)
    dormant = cur.execute(
        """
        SELECT customer_id FROM analysis_customers
        WHERE customer_id NOT IN (SELECT customer_id FROM analysis_sessions
                                  WHERE started_at >= DATE '2026-01-01' AND started_at < DATE '2026-04-02')
          AND customer_id NOT IN (SELECT customer_id FROM analysis_orders
                                  WHERE ordered_at >= DATE '2026-01-01' AND ordered_at < DATE '2026-04-02')
        ORDER BY customer_id LIMIT ?
        """,
        [DORMANT_SIZE],
    ).fetchall()
    assert len(dormant) == DORMANT_SIZE
    create_persona(cur, {"name": "Dormant"}, "setup", members=[r[0] for r in dormant])
    s.close()
    return path


@pytest.fixture
def shop(personas_db, tmp_path, monkeypatch) -> Path:
    """A fresh copy for one test, which the app opens; no credentials file (no login)."""
    path = tmp_path / "shop.duckdb"
    shutil.copy(personas_db, path)
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(path))
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "users.toml"))
    return path


def persona_ids(path: Path) -> dict[str, int]:
    s = open_store(path)
    ids = dict(s.cursor().execute("SELECT name, persona_id FROM personas").fetchall())
    s.close()
    return ids


def target_planted_action(path: Path, persona_id: int) -> None:
    s = open_store(path)
    update_action(s.cursor(), 1, persona_ids=[persona_id])
    s.close()


def engine_rows(path: Path, **kwargs) -> list[kpis.ImpactRow]:
    s = open_store(path)
    rows = kpis.before_after(s.cursor(), 1, **kwargs)
    s.close()
    return rows


def run(page: str, **state) -> AppTest:
    return open_page(page, **state)


def row_of(frame: pd.DataFrame, persona: str, metric: str) -> pd.Series:
    match = frame[(frame["Persona"] == persona) & (frame["Metric"] == metric)]
    assert len(match) == 1, (persona, metric)
    return match.iloc[0]


def chart_spec(at: AppTest, key_part: str) -> dict:
    charts = [e for e in at.get("plotly_chart") if key_part in e.proto.id]
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


# --------------------------------------------------------------------------- Impact page


def test_impact_table_of_the_planted_action(shop):
    ids = persona_ids(shop)
    target_planted_action(shop, ids["Busy parents"])
    expected = {(r.persona_name, r.metric): r for r in engine_rows(shop)}
    at = run("pages/impact.py")
    assert not at.exception, at.exception
    assert at.error == []
    frame = at.dataframe[0].value
    # 6 personas with members x 3 default metrics, targeted persona first.
    assert len(frame) == 18
    assert list(frame["Persona"][:3]) == ["Busy parents – Busy Bea"] * 3
    assert list(frame["Targeted"][:3]) == ["✓"] * 3 and set(frame["Targeted"][3:]) == {""}
    busy = row_of(frame, "Busy parents – Busy Bea", "Conversion rate")
    ref = expected[("Busy parents", "conversion_rate")]
    assert busy["Before"] == f"{ref.before * 100:.1f}%"
    assert busy["After"] == f"{ref.after * 100:.1f}%"
    assert busy["vs control (DiD)"] == f"{ref.did * 100:+.1f} pt"
    assert busy["DiD 95% interval"] == f"{ref.did_low * 100:+.1f} to {ref.did_high * 100:+.1f}"
    aov = row_of(frame, "Busy parents – Busy Bea", "Average order value")
    ref_aov = expected[("Busy parents", "average_order_value")]
    assert aov["Before"] == f"€{ref_aov.before:,.2f}"
    # Windows of 30 days each side of 2026-03-02: from 2026-01-31, to 2026-03-31 included.
    captions = [c.value for c in at.caption]
    assert "Before: 2026-01-31 to 2026-03-01 · after: 2026-03-02 to 2026-03-31." in captions
    assert any("Holm's method across the 18 persona × metric comparisons" in c for c in captions)


def test_empty_denominators_read_not_available_and_are_flagged(shop):
    target_planted_action(shop, persona_ids(shop)["Busy parents"])
    at = run("pages/impact.py")
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    dormant = frame[frame["Persona"] == "Dormant"]
    # No session and no order in the windows: every rate is undefined, never "0.0%".
    assert len(dormant) == 3
    assert set(dormant["Before"]) == {"not available"} and set(dormant["After"]) == {"not available"}
    assert set(dormant["Note"]) == {"small sample"}
    assert any(c.value.startswith("Small sample:") for c in at.caption)


def test_window_control_persona_and_metric_widgets(shop):
    ids = persona_ids(shop)
    target_planted_action(shop, ids["Busy parents"])
    at = run("pages/impact.py")
    at.slider(key="impact_window").set_value(14).run()
    assert not at.exception, at.exception
    # 14 days before 2026-03-02 is 2026-02-16; the after window ends on 2026-03-15 included.
    assert "Before: 2026-02-16 to 2026-03-01 · after: 2026-03-02 to 2026-03-15." in [c.value for c in at.caption]

    at.selectbox(key="impact_control").set_value(ids["Bargain hunters"]).run()
    assert not at.exception, at.exception
    ref = {(r.persona_name, r.metric): r for r in engine_rows(shop, window_days=14, control=ids["Bargain hunters"])}
    frame = at.dataframe[0].value
    busy = row_of(frame, "Busy parents – Busy Bea", "Conversion rate")
    assert busy["vs control (DiD)"] == f"{ref[('Busy parents', 'conversion_rate')].did * 100:+.1f} pt"
    # The control persona's own rows have no difference-in-differences.
    own = frame[frame["Persona"] == "Bargain hunters – Frugal Fred"]
    assert set(own["vs control (DiD)"]) == {""}

    at.selectbox(key="impact_persona").set_value(ids["Busy parents"])
    at.selectbox(key="impact_metric").set_value("average_order_value").run()
    assert not at.exception, at.exception
    aov = ref[("Busy parents", "average_order_value")]
    summary = [m.value for m in at.markdown if m.value.startswith("Average order value of Busy Bea")]
    assert len(summary) == 1
    verb = "rose" if aov.change > 0 else "fell"
    assert summary[0].startswith(f"Average order value of Busy Bea {verb} from €{aov.before:,.2f} to €{aov.after:,.2f}")
    assert "; Bargain hunters – Frugal Fred " in summary[0]  # the chosen control, in words
    spec = chart_spec(at, "impact_chart")
    names = [trace["name"] for trace in spec["data"]]
    assert names == ["Busy parents – Busy Bea", "Bargain hunters – Frugal Fred"]
    # The action date as a vertical line and the two 14-day windows shaded.
    shapes = spec["layout"]["shapes"]
    rects = sorted((s["x0"][:10], s["x1"][:10]) for s in shapes if s["type"] == "rect")
    assert rects == [("2026-02-16", "2026-03-02"), ("2026-03-02", "2026-03-16")]
    lines = [s for s in shapes if s["type"] == "line"]
    assert [line["x0"][:10] for line in lines] == ["2026-03-02"]
    assert spec["layout"]["yaxis"]["title"]["text"] == "Average order value (EUR)"


def test_a_bare_date_with_targeted_personas_gives_the_actions_numbers(shop):
    ids = persona_ids(shop)
    target_planted_action(shop, ids["Busy parents"])
    from_action = run("pages/impact.py").dataframe[0].value
    at = run("pages/impact.py", impact_source="date", impact_date=PLANTED_START,
             impact_targeted=[ids["Busy parents"]])
    assert not at.exception, at.exception
    pd.testing.assert_frame_equal(at.dataframe[0].value, from_action)


def test_a_date_outside_the_data_is_a_one_line_message(shop):
    at = run("pages/impact.py", impact_source="date", impact_date=date(2019, 6, 3))
    assert not at.exception, at.exception
    assert len(at.error) == 1
    assert "no session or order between 2019-04-04 and 2019-07-03" in at.error[0].value
    assert len(at.dataframe) == 0


def test_an_action_without_personas_shows_the_hint(shop):
    at = run("pages/impact.py")
    assert not at.exception, at.exception
    assert any("targets no persona yet" in w.value for w in at.warning)
    # Every persona is untargeted; the table still shows them all.
    assert set(at.dataframe[0].value["Targeted"]) == {""}


def test_a_deleted_targeted_persona_keeps_its_row(shop):
    ids = persona_ids(shop)
    target_planted_action(shop, ids["Busy parents"])
    s = open_store(shop)
    # What an admin's delete_persona does (without a credentials file nobody is admin).
    s.cursor().execute("UPDATE personas SET deleted_at = current_timestamp WHERE persona_id = ?", [ids["Busy parents"]])
    s.close()
    at = run("pages/impact.py", impact_persona=ids["Busy parents"])
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    # The action's effect stays measurable: 6 personas x 3 metrics, the deleted one first.
    assert len(frame) == 18 and list(frame["Persona"][:3]) == ["Busy parents – Busy Bea"] * 3
    assert at.selectbox(key="impact_persona").value == ids["Busy parents"]


def test_impact_page_in_french(shop):
    target_planted_action(shop, persona_ids(shop)["Busy parents"])
    at = run("pages/impact.py", lang="fr")
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    assert "Taux de conversion" in set(frame["Indicateur"])
    summary = [m.value for m in at.markdown if m.value.startswith("Pour Busy Bea")]
    assert len(summary) == 1 and "intervalle à 95 %" in summary[0]
    assert "\u202f%" in frame["Avant"].iloc[0]  # French percent: narrow no-break space


# --------------------------------------------------------------------------- Actions page


def test_create_edit_and_delete_an_action(shop):
    ids = persona_ids(shop)
    at = run("pages/actions.py", display_name="Camille")
    assert not at.exception, at.exception
    at.text_input(key="action_name").set_value("Spring newsletter")
    at.selectbox(key="action_channel").set_value("email")
    at.date_input(key="action_starts").set_value(date(2026, 4, 6))
    at.multiselect(key="action_personas").set_value([ids["Loyal premium"]])
    at.button(key="action_save").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Action “Spring newsletter” created. Its impact is on the Impact page."]
    s = open_store(shop)
    created = [a for a in list_actions(s.cursor()) if a.name == "Spring newsletter"]
    s.close()
    assert len(created) == 1
    action = created[0]
    assert (action.channel, action.starts_on, action.persona_ids, action.created_by) == (
        "email", date(2026, 4, 6), (ids["Loyal premium"],), "Camille")

    # Edit: the form holds the saved values; an end before the start is refused in one line.
    assert at.text_input(key="action_name").value == "Spring newsletter"
    at.date_input(key="action_ends").set_value(date(2026, 4, 1))
    at.button(key="action_save").click().run()
    assert len(at.error) == 1 and "ends (2026-04-01) before it starts (2026-04-06)" in at.error[0].value
    at.date_input(key="action_ends").set_value(date(2026, 4, 30))
    at.text_input(key="action_name").set_value("Spring newsletter (loyal)")
    at.button(key="action_save").click().run()
    s = open_store(shop)
    edited = get_action(s.cursor(), action.action_id)
    s.close()
    assert (edited.name, edited.ends_on, edited.created_by) == ("Spring newsletter (loyal)", date(2026, 4, 30), "Camille")

    at.button(key="action_delete").click().run()
    assert not at.exception, at.exception
    s = open_store(shop)
    remaining = [a.action_id for a in list_actions(s.cursor())]
    s.close()
    assert remaining == [1]  # only the planted action is left
    assert at.selectbox(key="action_pick").value == 0  # back to "new action"


def test_planted_action_preselects_the_persona_of_its_archetype(shop):
    ids = persona_ids(shop)
    at = run("pages/actions.py", display_name="Camille", action_pick=1)
    assert not at.exception, at.exception
    assert any("targets no persona yet" in w.value for w in at.warning)
    assert any("archetype busy_parent" in i.value and "Busy parents – Busy Bea (100%)" in i.value for i in at.info)
    assert at.multiselect(key="action_personas").value == [ids["Busy parents"]]
    at.button(key="action_save").click().run()
    s = open_store(shop)
    action = get_action(s.cursor(), 1)
    s.close()
    assert action.persona_ids == (ids["Busy parents"],)
    assert action.created_by == "sample shop"  # editing keeps the owner


def test_one_click_turns_a_suggestion_into_an_action(shop):
    ids = persona_ids(shop)
    at = run("pages/actions.py", display_name="Camille", lang="fr", suggest_persona=ids["Bargain hunters"],
             suggest_starts=date(2026, 5, 4))
    assert not at.exception, at.exception
    buttons = [b for b in at.button if b.key and b.key.startswith("suggest_create_")]
    assert buttons, "the bargain hunters fit at least one play"
    play = buttons[0].key.removeprefix("suggest_create_")
    buttons[0].click().run()
    assert not at.exception, at.exception
    s = open_store(shop)
    created = [a for a in list_actions(s.cursor()) if a.action_id != 1]
    s.close()
    french_name = {p.key: p.text["fr"]["name"] for p in load_playbook()}[play]
    assert len(created) == 1
    assert (created[0].name, created[0].persona_ids, created[0].starts_on, created[0].created_by) == (
        french_name, (ids["Bargain hunters"],), date(2026, 5, 4), "Camille")


def test_read_only_without_the_editor_role(shop, tmp_path):
    auth.add_user(tmp_path / "users.toml", "vic", "viewer-pass", "viewer", "Vic", rounds=4)
    at = run("pages/actions.py", signed_in_user="vic", action_pick=1)
    assert not at.exception, at.exception
    assert any("editing them needs the editor role" in i.value for i in at.info)
    assert at.button(key="action_save").disabled


# --------------------------------------------------------------------------- persona panel


def test_persona_panel_shows_trend_and_the_actions_that_targeted_it(shop):
    ids = persona_ids(shop)
    target_planted_action(shop, ids["Busy parents"])
    at = run("pages/persona_editor.py", persona=ids["Busy parents"])
    assert not at.exception, at.exception
    assert "KPI trend and actions" in [h.value for h in at.subheader]
    # The sample shop is French: its planted action has its French name.
    assert any(m.value.startswith("**Offre du soir dans l'appli pour les parents**") for m in at.markdown)
    spec = chart_spec(at, "persona_trend")
    assert [trace["name"] for trace in spec["data"]] == ["This persona", "Whole shop"]
    # The planted action's start is on the trend.
    assert [s["x0"][:10] for s in spec["layout"]["shapes"]] == ["2026-03-02"]
    # Its link opens the Impact page on this action (the picker's label is the URL value).
    links = [link.proto for link in at.get("page_link") if link.proto.label == "See its impact"]
    expected = urlencode({"impact_action": "#1 Offre du soir dans l'appli pour les parents · 2026-03-02"})
    assert [link.query_string for link in links] == [expected]


# --------------------------------------------------------------------------- formatting rules


def _row(**changes) -> kpis.ImpactRow:
    base = dict(
        action_id=1, starts_on="2026-03-02", window_days=30, persona_id=1, persona_name="Fred",
        persona_nickname="Frugal Fred", targeted=True, metric="conversion_rate", units="sessions",
        before=0.021, after=0.026, change=0.005, change_low=0.002, change_high=0.008,
        relative_change=0.238, relative_change_low=0.1, relative_change_high=0.4, p_value=0.001,
        p_value_holm=0.003, n_before=4000, n_after=4100, customers_before=900, customers_after=910,
        small_sample=False, control="untargeted", control_persona_id=None, control_before=0.020,
        control_after=0.021, control_change=0.001, control_n_before=9000, control_n_after=9100,
        did=0.004, did_low=0.001, did_high=0.007, did_relative=0.18, did_relative_low=0.05,
        did_relative_high=0.3, did_p_value=0.01, did_p_value_holm=0.03, did_small_sample=False,
        interval_method="newcombe_wilson_clustered", window_complete=True,
    )
    base.update(changes)
    return kpis.ImpactRow(**base)


def test_summary_paragraph_in_plain_words():
    from ui.impact_view import summary_text

    rows = [_row()]
    text = summary_text(kpis.impact_summary(rows, 1, "conversion_rate"), "customers not targeted", "EUR", 1)
    # The example sentence, then the DiD and its reading.
    assert text == (
        "Conversion rate of Frugal Fred rose from 2.1% to 2.6% (+0.5 pt, 95% interval +0.2 to +0.8); "
        "customers not targeted rose by 0.1 pt over the same period. Net of the control, the difference is "
        "+0.4 pt (95% interval +0.1 to +0.7): the interval excludes 0, so chance alone is an unlikely explanation."
    )
    # Significant alone, not once the 18 comparisons are adjusted (Holm p 0.06): said so.
    held = [replace(rows[0], did_p_value_holm=0.06)]
    assert summary_text(kpis.impact_summary(held, 1, "conversion_rate"), "x", "EUR", 18).endswith(
        "Tested together with the table's 18 comparisons (Holm adjustment), it is no longer significant.")
    empty = [replace(rows[0], before=None, change=None, change_low=None, change_high=None)]
    assert summary_text(kpis.impact_summary(empty, 1, "conversion_rate"), "x", "EUR", 1) == (
        "Conversion rate of Frugal Fred is not available: nothing to measure in one of the windows.")


def test_cells_are_coloured_only_where_the_interval_excludes_zero():
    from ui.impact_view import DOWN_STYLE, UP_STYLE, table_frame, table_styler

    rows = [
        _row(),  # change and DiD intervals above 0: both green
        _row(persona_id=2, persona_name="Bea", persona_nickname=None, targeted=False, change=-0.004,
             change_low=-0.007, change_high=-0.001, did=0.001, did_low=-0.002, did_high=0.004),  # change red only
        _row(persona_id=3, persona_name="Bo", persona_nickname=None, targeted=False, change=0.003,
             change_low=0.0, change_high=0.006, did=None, did_low=None, did_high=None),  # touches 0: none
    ]
    frame = table_frame(rows, "EUR")
    styles = table_styler(rows, frame)._compute().ctx  # {(row, column): [(property, value)]}
    coloured = {(r, frame.columns[c]): "; ".join(f"{p}: {v}" for p, v in css)
                for (r, c), css in styles.items() if css}
    assert coloured == {
        (0, "change"): UP_STYLE, (0, "change_ci"): UP_STYLE, (0, "did"): UP_STYLE, (0, "did_ci"): UP_STYLE,
        (1, "change"): DOWN_STYLE, (1, "change_ci"): DOWN_STYLE,
    }
    assert list(frame["change"]) == ["+0.5 pt", "-0.4 pt", "+0.3 pt"]
    assert list(frame["did"]) == ["+0.4 pt", "+0.1 pt", "not available"]


def test_money_and_count_values_and_changes():
    from ui.impact_view import change_text, interval_text, value_text

    assert value_text(77.7, "money", "EUR") == "€77.70"
    assert change_text(-2.346, "money", "EUR") == "-€2.35"
    assert interval_text(-4.58, 0.1, "money", "EUR") == "-€4.58 to +€0.10"
    assert value_text(None, "rate", None) == "not available"
    assert value_text(1.5, "count", None) == "1.50"
    assert change_text(0.0, "rate", None) == "0.0 pt"
