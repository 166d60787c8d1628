"""Gallery cards, cluster picking and interview shortlists of the Personas page."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from persona_engine.drafting import STALE_AFTER_DAYS, create_personas_from_run, persona_count_advice
from persona_engine.personas import PERSONA_FIELDS, get_persona
from persona_engine.safe_text import plain_markdown
from ui import clustering_data, data, editor_data, fmt, shell
from ui.clustering_view import cluster_name, trait_text
from ui.editor_actions import PERSONA_KEY
from ui.editor_identity import Identity
from ui.editor_view import avatar, render_value
from ui.i18n import label, t

CARD_KEY = "personas_card"  # the persona shown read-only when there is no editor page
EDITOR_FILE = "persona_editor.py"
COLUMNS = 3


def count_guidance(personas: pd.DataFrame) -> None:
    """3 to 5 active personas is the sweet spot; a warning above 7."""
    active = int((personas["status"] != "archived").sum())  # drafts count: they are on the table
    advice = persona_count_advice(active)
    message = {"few": "too_few", "ok": "sweet_spot", "many": "many", "too_many": "too_many"}[advice]
    (st.warning if advice == "too_many" else st.info)(t(f"personas.{message}", n=active))


def editor_available() -> bool:
    return any(spec.file == EDITOR_FILE for spec in shell.PAGES)


def _open(persona_id: int) -> None:
    if editor_available():
        st.session_state[PERSONA_KEY] = persona_id
        st.switch_page(f"pages/{EDITOR_FILE}")
    st.session_state[CARD_KEY] = persona_id


def _fact(facts: dict, key: str, kind: str, currency: str | None) -> str:
    value = facts.get(key)
    if value is None:
        return "–"
    if kind == "share":
        return fmt.percent(value)
    if kind == "money":
        return fmt.money(value, currency, 2)
    return fmt.number(value, 1)


def _validation_note(row: pd.Series) -> str | None:
    validated = row["last_validated_at"]
    if validated is None or pd.isna(validated):
        return t("personas.never_validated")
    if (datetime.now() - pd.Timestamp(validated).to_pydatetime()).days > STALE_AFTER_DAYS:
        return t("personas.stale")
    return None


def card(row: pd.Series, version: str, signature: str, currency: str | None) -> None:
    """Avatar, name, kind, shares of customers and revenue, top traits, headline KPIs."""
    persona_id = int(row["persona_id"])
    persona = get_persona(data.cursor(), persona_id)
    facts = {f.key: f.value for f in editor_data.facts(version, persona_id).facts}
    with st.container(border=True):
        left, right = st.columns([1, 3])
        with left:
            avatar(persona.fields, width=72)
        with right:
            st.markdown(f"**{plain_markdown(persona['name'])}**")
            if persona["nickname"]:
                st.caption(plain_markdown(persona["nickname"]))
            st.caption(t("personas.kind_status", kind=label("persona_kind", persona["kind"]),
                         status=label("persona_status", persona["status"])))
        a, b = st.columns(2)
        a.metric(t("personas.share_customers"), _fact(facts, "customer_share", "share", currency),
                 help=t("personas.members", n=fmt.number(row["members"])))
        b.metric(t("personas.share_revenue"), _fact(facts, "revenue_share", "share", currency))
        for trait in clustering_data.persona_traits(version, signature, persona_id):
            st.markdown(f"- {trait_text(trait, currency)}")
        st.caption(" · ".join([
            f"{t('personas.aov')}: {_fact(facts, 'average_order_value', 'money', currency)}",
            f"{t('personas.orders_per_member')}: {_fact(facts, 'orders_per_member', 'number', currency)}",
            f"{t('personas.conversion')}: {_fact(facts, 'conversion_rate', 'share', currency)}",
        ]))
        note = _validation_note(row)
        if note:
            st.caption(f"⚠ {note}")
        if st.button(t("personas.open"), key=f"persona_open_{persona_id}", icon=":material/open_in_new:"):
            _open(persona_id)


def gallery(personas: pd.DataFrame, version: str, currency: str | None) -> None:
    signature = clustering_data.personas_signature()
    for start in range(0, len(personas), COLUMNS):
        for column, (_, row) in zip(st.columns(COLUMNS), personas.iloc[start:start + COLUMNS].iterrows(),
                                    strict=False):
            with column:
                card(row, version, signature, currency)
    shown = st.session_state.get(CARD_KEY)
    if shown is not None and shown in set(personas["persona_id"]):
        read_only_card(int(shown))


def read_only_card(persona_id: int) -> None:
    """Every field of a persona; the empty ones say so (the data did not fill them)."""
    persona = get_persona(data.cursor(), persona_id)
    with st.container(border=True):
        st.subheader(t("personas.card_title"))
        avatar(persona.fields)
        for name, spec in PERSONA_FIELDS.items():
            if spec.kind == "image" or name in ("avatar", "avatar_mime"):
                continue
            value = persona.fields[name]
            if value in (None, "", []):
                st.markdown(f"**{t(f'persona_fields.{name}')}**")
                st.caption(t("personas.empty_field"))
            else:
                render_value(name, value)
        st.button(t("personas.close"), key="persona_card_close",
                  on_click=lambda: st.session_state.pop(CARD_KEY, None))


# ---------------------------------------------------------------- picking


def _groups(clusters: list[int], choices: dict[int, str]) -> list[list[int]]:
    """Clusters to personas from the per-cluster choices: keep, discard or merge:<other>.

    Merges chain (a into b, b into c: one persona); a merge into a discarded cluster
    keeps the merged one.
    """
    parent = {c: c for c in clusters}

    def root(c: int) -> int:
        while parent[c] != c:
            c = parent[c]
        return c

    for c, choice in choices.items():
        if choice.startswith("merge:"):
            target = int(choice.split(":")[1])
            if root(target) != root(c):
                parent[root(c)] = root(target)
    groups: dict[int, list[int]] = {}
    for c in clusters:
        if choices.get(c) == "discard":
            continue
        groups.setdefault(root(c), []).append(c)
    return [sorted(g) for g in groups.values()]


def picking(run_id: int, version: str, who: Identity | None, currency: str | None, personas: pd.DataFrame) -> None:
    already = int((personas["source_run_id"] == run_id).sum()) if not personas.empty else 0
    if already:
        st.warning(t("personas.already", n=already, run=run_id))
    run = clustering_data.run(version, run_id)
    drafts = clustering_data.drafts(version, run_id, None)
    clusters = [c.cluster for c in run.clusters]
    choices: dict[int, str] = {}
    for draft in drafts:
        cluster = draft.clusters[0]
        with st.container(border=True):
            left, right = st.columns([2, 1])
            with left:
                st.markdown(f"**{cluster_name(cluster)} · {plain_markdown(draft.fields['name'])}**")
                st.caption(t("personas.draft_caption", customers=fmt.number(draft.customers),
                             share=fmt.percent(draft.share), revenue=fmt.percent(draft.revenue_share),
                             kind=label("persona_kind", draft.fields["kind"])))
                for trait in draft.traits[:3]:
                    st.markdown(f"- {trait_text(trait, currency)}")
            with right:
                options = {"keep": t("personas.keep"), "discard": t("personas.discard")}
                options.update({f"merge:{o}": t("personas.merge_into", n=o) for o in clusters if o != cluster})
                choices[cluster] = st.selectbox(t("personas.action", n=cluster), list(options),
                                                key=f"pick_{run_id}_{cluster}", format_func=options.get)
    groups = _groups(clusters, choices)
    if not groups:
        st.info(t("personas.nothing_picked"))
        return
    st.caption(t("personas.will_create", n=len(groups)))
    if who is None:
        st.info(t("personas.name_first"))
        return
    if not who.can("editor"):
        st.info(t("personas.viewer"))
        return
    if st.button(t("personas.create"), type="primary", key="personas_create"):
        with shell.guard():
            ids = create_personas_from_run(data.cursor(), run_id, groups, user=who.user_name)
            data.bump_data_version()  # members changed: explorer filters and KPI pages recompute
            st.session_state["personas_created"] = len(ids)
            st.rerun()


# ---------------------------------------------------------------- shortlists

_SHORTLIST_COLUMNS = ("customer_id", "first_name", "last_name", "email", "city", "age", "orders", "revenue",
                      "last_order_at")


def shortlist(personas: pd.DataFrame, version: str, currency: str | None) -> None:
    names = {int(r.persona_id): r.name for r in personas.itertuples()}
    persona_id = st.selectbox(t("personas.shortlist_persona"), list(names), key="shortlist_persona",
                              format_func=lambda i: names.get(i, "?"))
    lists = clustering_data.shortlist(version, clustering_data.personas_signature(), int(persona_id))
    if lists.empty:
        st.info(t("personas.no_members"))
        return
    headers = {"customer_id": "col_customer", "first_name": "col_first_name", "last_name": "col_last_name",
               "email": "col_email", "city": "col_city", "age": "col_age", "orders": "col_orders",
               "revenue": "col_revenue", "last_order_at": "col_last_order"}
    for kind in ("best", "worst", "representative"):
        part = lists[lists["list"] == kind][list(_SHORTLIST_COLUMNS)]
        st.markdown(f"**{t(f'personas.list_{kind}')}**")
        st.dataframe(part.rename(columns={c: t(f"personas.{h}") for c, h in headers.items()}), hide_index=True,
                     key=f"shortlist_{kind}", column_config={
                         t("personas.col_revenue"): st.column_config.NumberColumn(format="%.2f"),
                         t("personas.col_customer"): st.column_config.NumberColumn(format="%d")})
    st.download_button(t("personas.download"), lists.to_csv(index=False).encode("utf-8"),
                       file_name=f"persona-{persona_id}-interviews.csv", mime="text/csv", key="shortlist_download",
                       icon=":material/download:")
