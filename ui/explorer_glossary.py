"""Explorer: what every customer feature means, and the thresholds of the behavioural
segments (shown with their current values; editable by whoever may change shop data)."""

from __future__ import annotations

from dataclasses import asdict, fields

import streamlit as st

from persona_engine.features import FEATURES
from persona_engine.segments import BEHAVIOUR_SEGMENTS, RFM_GROUPS, BehaviourRules
from ui import explorer_data, fmt
from ui.editor_identity import current_identity, login_required
from ui.i18n import label, t
from ui.shell import guard

RULES_DONE = "explorer_rules_done"  # customers re-segmented by the last save, shown once


def shop_writer() -> bool:
    """Whether this person may change what everyone sees (as on the Data page): with
    sign-in, admins; without, anyone who gave a name."""
    who = current_identity()
    return who is not None and (who.can("admin") or not login_required())


def glossary() -> None:
    """One line per customer feature, then the RFM groups."""
    lines = []
    for key, info in FEATURES.items():
        unit = t(f"explorer.unit.{info.unit}")
        needs = f" {t('explorer.needs_sessions')}" if info.needs_sessions else ""
        lines.append(f"- **{t(f'feature_name.{key}')}** ({unit}): {t(f'feature_definition.{key}')}{needs}")
    st.markdown("\n".join(lines))
    st.markdown(f"**{t('explorer.rfm_glossary_title')}**")
    st.caption(t("explorer.rfm_glossary_intro"))
    st.markdown("\n".join(f"- **{label('rfm_group', g)}**: {t(f'explorer.rfm_meaning.{g}')}" for g in RFM_GROUPS))


def _segment_lines(rules: BehaviourRules) -> str:
    values = {k: fmt.percent(v, 0) if isinstance(v, float) else fmt.number(v) for k, v in asdict(rules).items()}
    lines = [f"- **{label('segment', s)}**: {t(f'explorer.segment_rule.{s}', **values)}" for s in BEHAVIOUR_SEGMENTS]
    lines.append(f"- **{t('explorer.interest_segment', category='…')}**: "
                 f"{t('explorer.segment_rule.interest', **values)}")
    return "\n".join(lines)


def segment_rules() -> None:
    """The segments' definitions with the thresholds in force, and a form to change them."""
    done = st.session_state.pop(RULES_DONE, None)
    if done is not None:
        st.success(t("explorer.rules_saved", n=fmt.number(done)))
    current = explorer_data.rules()
    st.markdown(_segment_lines(current))
    if not shop_writer():
        st.caption(t("explorer.rules_readonly"))
        return
    with st.form("explorer_rules_form", border=False):
        st.caption(t("explorer.rules_form_intro"))
        columns = st.columns(3)
        values: dict[str, float | int] = {}
        for i, f in enumerate(fields(BehaviourRules)):
            value = getattr(current, f.name)
            column = columns[i % 3]
            if isinstance(value, float):
                values[f.name] = column.number_input(
                    t(f"explorer.rule.{f.name}"), min_value=0.0, max_value=1.0, value=float(value), step=0.05,
                    format="%.2f", key=f"explorer_rule_{f.name}")
            else:
                values[f.name] = int(column.number_input(
                    t(f"explorer.rule.{f.name}"), min_value=0, max_value=3650, value=int(value), step=1,
                    key=f"explorer_rule_{f.name}"))
        submitted = st.form_submit_button(t("explorer.rules_save"), type="primary", key="explorer_rules_save")
    if submitted:
        with guard(), st.spinner(t("explorer.rules_saving")):
            # assign_segments validates the thresholds and says which one makes no sense.
            st.session_state[RULES_DONE] = explorer_data.save_rules(BehaviourRules(**values))  # type: ignore[arg-type]
            st.rerun()
