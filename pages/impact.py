"""Impact: did acting on a persona move its KPIs? Before/after per persona and metric, with
95% intervals, the difference against a control, a plain-words summary and a weekly chart."""

from datetime import timedelta

import streamlit as st

from persona_engine.kpis import ImpactWindows, impact_frame, impact_summary
from persona_engine.safe_text import plain_markdown
from ui import charts, editor_data, fmt, impact_data
from ui.i18n import t
from ui.impact_controls import (
    UNTARGETED,
    chart_control,
    default_date,
    persona_names,
    pick_control,
    pick_detail,
    pick_subject,
    pick_window_and_metrics,
)
from ui.impact_view import (
    persona_label,
    summary_text,
    table_columns,
    table_frame,
    table_height,
    table_styler,
    weekly_chart,
)
from ui.sample import shop_page
from ui.shell import guard

version, shop = shop_page("impact")
personas = editor_data.personas()
personas = personas[personas["members"] > 0]
if personas.empty:
    st.info(t("impact.no_personas"))
    st.stop()
names = persona_names(personas)

subject = pick_subject(impact_data.actions(), names, default_date(shop.last_order))
if subject is None:
    st.stop()
window_days, metrics = pick_window_and_metrics()
control = pick_control(names, subject.targeted)
if not metrics:
    st.info(t("impact.pick_a_metric"))
    st.stop()

if subject.action is not None:
    action = subject.action
    if not action.persona_ids:
        st.warning(t("impact.no_target_hint", name=plain_markdown(action.name)))
        st.page_link("pages/actions.py", label=t("impact.go_to_actions"), icon=":material/edit_calendar:")
    else:
        targets = ", ".join(plain_markdown(names.get(p, f"#{p}")) for p in action.persona_ids)
        st.caption(t("impact.action_targets", personas=targets, date=action.starts_on.isoformat()))
windows = ImpactWindows(subject.starts_on, window_days)
day = timedelta(days=1)  # the windows' ends are exclusive; people read inclusive dates
st.caption(t("impact.windows", before_from=windows.before_from.date().isoformat(),
             before_to=(windows.start - day).date().isoformat(), start=subject.starts_on.isoformat(),
             after_to=(windows.after_to - day).date().isoformat()))

signature = impact_data.personas_signature()
rows = []
with guard(), st.spinner(t("impact.computing")):
    rows = impact_data.impact_rows(version, signature, subject.starts_on, subject.targeted, window_days,
                                   control, metrics, subject.action.action_id if subject.action else None)
if not rows:
    st.stop()

st.subheader(t("impact.table_title"))
frame = table_frame(rows, shop.currency)
st.dataframe(table_styler(rows, frame), hide_index=True, key="impact_table", height=table_height(len(frame)),
             column_config=table_columns())
control_name = t("impact.control_untargeted") if control == UNTARGETED else names[int(control)]
st.caption(t("impact.table_legend", control=plain_markdown(control_name)))
st.caption(t("impact.holm_note", n=len(rows)))
if any(r.small_sample or (r.did_small_sample and r.did is not None) for r in rows):
    st.caption(t("impact.small_note"))
if not all(r.window_complete for r in rows):
    st.warning(t("impact.window_cut"))
st.download_button(t("common.download_csv"), impact_frame(rows).to_csv(index=False).encode(),
                   file_name=f"impact_{subject.starts_on.isoformat()}_{window_days}d.csv", mime="text/csv",
                   key="impact_download", on_click="ignore")

st.subheader(t("impact.detail_title"))
persona_ids = list(dict.fromkeys(r.persona_id for r in rows))
# A targeted persona deleted since keeps its row (and its name from the table).
names = {**{r.persona_id: persona_label(r.persona_name, r.persona_nickname) for r in rows}, **names}
persona_id, metric = pick_detail(names, persona_ids, subject.targeted, metrics)
with guard():
    summary = impact_summary(rows, persona_id, metric)
    row_control = t("impact.control_untargeted") if control == UNTARGETED else names[int(control)]
    st.markdown(summary_text(summary, row_control, shop.currency, len(rows)))

    control_id, control_exclude = chart_control(control, persona_id, subject.targeted)
    if control_id is None:
        row_control = t("impact.control_untargeted")
    start, end = impact_data.chart_span(windows, metric)
    persona_series = impact_data.weekly(version, signature, persona_id, metric, start, end)
    control_series = impact_data.weekly(version, signature, control_id, metric, start, end, control_exclude)
    fig = weekly_chart(persona_series, control_series, windows, metric, names[persona_id], row_control,
                       shop.currency)
    st.plotly_chart(fig, config=charts.PLOTLY_CONFIG, key="impact_chart")
    st.caption(t("impact.chart_customers",
                 persona=plain_markdown(names[persona_id]),
                 n=fmt.number(impact_data.audience_size(version, signature, persona_id)),
                 control=plain_markdown(row_control),
                 m=fmt.number(impact_data.audience_size(version, signature, control_id, control_exclude))))
    if metric == "retention_rate":
        st.caption(t("impact.chart_retention_note"))
