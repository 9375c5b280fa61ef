"""Overview: headline figures, segment sizes beside revenue share, revenue concentration."""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import state as app_state
from rfm.service import insights

ctx = app_state.context()
app_state.page_header("Overview", ctx)

figures = insights.kpis(ctx.dataset)
cols = st.columns([0.9, 1.2, 0.9, 1.3, 1.2])
cols[0].metric("Customers", f"{figures.customers:,}")
cols[1].metric("Revenue (net)", f"{figures.revenue:,.0f}")
cols[2].metric("Orders", f"{figures.orders:,}")
if figures.first_date and figures.last_date:
    cols[3].metric("Period", insights.period_label(figures.first_date, figures.last_date),
                   delta=f"{figures.first_date:%b %Y} – {figures.last_date:%b %Y}", delta_color="off",
                   delta_arrow="off", help=f"First and last line: {figures.first_date} to {figures.last_date}")
else:
    cols[3].metric("Period", "not available")
cols[4].metric("Snapshot date", f"{figures.snapshot:%Y-%m-%d}", help="Recency is counted in days before this date")

specs = app_state.overview_charts(ctx)
if app_state.require_model(ctx):
    st.vega_lite_chart(spec=specs["shares"], key="overview_shares")
left, right = st.columns(2)
left.vega_lite_chart(spec=specs["pareto"], key="overview_pareto")
right.vega_lite_chart(spec=specs["lorenz"], key="overview_lorenz")
concentration = app_state.concentration_for(ctx.data_key, ctx.dataset.customers)
top = concentration.top_shares
st.caption(
    f"Top 1% of customers bring {top[0.01]:.0%} of revenue, top 10% {top[0.1]:.0%}, top 20% {top[0.2]:.0%}. "
    f"Gini {concentration.gini:.2f}, over the {concentration.customers:,} customers with positive net revenue"
    + (f" ({concentration.excluded_customers:,} with none left out)." if concentration.excluded_customers else ".")
)
