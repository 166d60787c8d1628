"""What an import does to the team's work: the sample's personas go, an imported shop's stay.

Personas, clustering runs and actions made on the generated sample describe fake
customers, so importing real data removes them; re-importing fresh data over an imported
shop keeps them so they can be re-evaluated.
"""

from __future__ import annotations

from datetime import date

from persona_engine.ingest import check_files, import_files
from persona_engine.store import set_setting
from tests.fixtures.ingest.helpers import fixture

ORDERS = [fixture("customers.csv"), fixture("orders.csv")]
WORK_TABLES = ("personas", "persona_history", "persona_members", "persona_comments",
               "persona_presence", "clustering_runs", "cluster_assignments", "cluster_profiles",
               "cluster_projection", "actions")


def add_team_work(cur) -> None:
    """One row in each table of the team's work: a run, a persona made from it, an action."""
    cur.execute("INSERT INTO clustering_runs (method, k, feature_set, features, n_customers) "
                "VALUES ('kmeans', 2, 'rfm', ['recency_days'], 2)")
    cur.execute("INSERT INTO cluster_assignments (run_id, customer_id, cluster) VALUES (1, 1, 0)")
    cur.execute("INSERT INTO cluster_profiles (run_id, cluster, size, share) VALUES (1, 0, 1, 0.5)")
    cur.execute("INSERT INTO cluster_projection (run_id, customer_id, cluster, x, y) "
                "VALUES (1, 1, 0, 0.1, 0.2)")
    cur.execute("INSERT INTO personas (name, source_run_id) VALUES ('Frugal Fred', 1)")
    cur.execute("INSERT INTO persona_history (persona_id, version, changed_at, field) "
                "VALUES (1, 1, now(), 'name')")
    cur.execute("INSERT INTO persona_members (persona_id, customer_id, run_id) VALUES (1, 1, 1)")
    cur.execute("INSERT INTO persona_comments (persona_id, author, department, body) "
                "VALUES (1, 'Ana', 'marketing', 'ok')")
    cur.execute("INSERT INTO persona_presence (persona_id, user_name, seen_at) VALUES (1, 'Ana', now())")
    cur.execute("INSERT INTO actions (name, persona_ids, starts_on) VALUES ('Winter mailing', [1], ?)",
                [date(2024, 1, 10)])


def counts(cur) -> dict[str, int]:
    # Table names come from the constant tuple above.
    return {t: cur.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in WORK_TABLES}  # noqa: S608


def test_importing_over_the_sample_removes_its_personas_runs_and_actions(cur):
    set_setting(cur, "source", "sample")
    add_team_work(cur)
    assert set(counts(cur).values()) == {1}
    report = import_files(cur, ORDERS, "generic", compute_features=False)
    # Every table of the sample's work is empty: 0 rows in each of the ten.
    assert counts(cur) == dict.fromkeys(WORK_TABLES, 0)
    assert any("1 persona(s), 1 clustering run(s), 1 action(s) were removed" in n for n in report.notes)


def test_importing_over_an_imported_shop_keeps_personas_runs_and_actions(cur):
    import_files(cur, ORDERS, "generic", compute_features=False)
    add_team_work(cur)
    report = import_files(cur, ORDERS, "generic", compute_features=False)
    # The one row of each table is still there (the customer-level rows too: persona
    # members and cluster assignments are re-evaluated by their own modules, not dropped).
    assert counts(cur) == dict.fromkeys(WORK_TABLES, 1)
    assert not any("removed" in n for n in report.notes)


def test_the_check_says_what_the_import_will_remove_and_removes_nothing(cur):
    set_setting(cur, "source", "sample")
    add_team_work(cur)
    report = check_files(cur, ORDERS, "generic")
    assert any("1 persona(s), 1 clustering run(s), 1 action(s) will be removed" in n for n in report.notes)
    assert counts(cur) == dict.fromkeys(WORK_TABLES, 1)


def test_an_interrupted_generation_counts_as_the_sample(cur):
    set_setting(cur, "source", "generating")
    add_team_work(cur)
    import_files(cur, ORDERS, "generic", compute_features=False)
    assert counts(cur)["personas"] == 0


def test_the_generated_sample_planted_action_goes_with_it(cur):
    from sample_data.generator import generate_shop

    generate_shop(cur, n_customers=200, seed=3)
    # The generator plants exactly one action; the import of real data removes it.
    assert cur.execute("SELECT count(*) FROM actions").fetchall() == [(1,)]
    import_files(cur, ORDERS, "generic", compute_features=False)
    assert cur.execute("SELECT count(*) FROM actions").fetchall() == [(0,)]
