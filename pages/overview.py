"""Overview: the shop's headline KPIs for a period, against the previous period."""

import streamlit as st

from persona_engine.overview import default_period
from ui import charts, data, fmt
from ui.i18n import current_language, t
from ui.sample import shop_page
from ui.shell import guard

_, summary = shop_page("overview")

default_start, default_end = default_period(summary)
picked = st.date_input(
    t("overview.period"), value=(default_start, default_end), min_value=summary.first_order,
    max_value=summary.last_order, key="overview_period", help=t("overview.period_help"),
    format="DD/MM/YYYY" if current_language() == "fr" else "YYYY/MM/DD", bind="query-params",
)
if not isinstance(picked, tuple) or len(picked) != 2:
    st.info(t("overview.pick_two_dates"))
    st.stop()

with guard():
    ov = data.shop_overview(data.data_version(), picked[0], picked[1])
    cur, prev, currency = ov.current, ov.previous, summary.currency
    st.caption(t("overview.compared_with", start=prev.start.isoformat(), end=prev.end.isoformat()))

    # A tile has room for a short word; the reason is in the tile's help and the caption below.
    conversion = fmt.percent(cur.conversion_rate, 2) if ov.has_sessions else t("common.not_available")
    tiles = [
        ("customers", fmt.number(cur.customers), "customers"),
        ("orders", fmt.number(cur.orders), "orders"),
        ("revenue", fmt.money(cur.revenue, currency), "revenue"),
        ("aov", fmt.money(cur.average_order_value, currency, 2), "average_order_value"),
        ("conversion", conversion, "conversion_rate"),
        ("repeat", fmt.percent(cur.repeat_purchase_rate), "repeat_purchase_rate"),
    ]
    for column, (key, value, kpi) in zip(st.columns(3) + st.columns(3), tiles, strict=True):
        column.metric(t(f"overview.{key}"), value, delta=fmt.signed_percent(ov.change(kpi)) or None,
                      help=t(f"overview.{key}_help"), border=True)

    if not ov.has_sessions:
        st.caption(f"{t('overview.conversion')}: {t('common.no_session_data')}")

    st.subheader(t("overview.weekly_title"))
    if ov.weekly.empty:
        st.info(t("overview.no_orders"))
    else:
        fig = charts.bars_and_line(
            ov.weekly, "week", "revenue", "orders", x_title=t("overview.week"),
            bar_title=t("overview.weekly_revenue", currency=currency or ""), line_title=t("overview.weekly_orders"),
            partial=ov.weekly["days"] < 7,
        )
        st.plotly_chart(fig, config=charts.PLOTLY_CONFIG, key="overview_weekly_chart")
        if (ov.weekly["days"] < 7).any():
            st.caption(t("overview.partial_weeks"))
