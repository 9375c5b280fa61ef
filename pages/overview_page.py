"""Overview: headline figures, segment sizes beside revenue share, revenue concentration."""

from __future__ import annotations

import streamlit as st

import app_state
from rfm import charts
from rfm import dashboard_data as dd

ctx = app_state.context()
app_state.page_header("Overview", ctx)

figures = dd.kpis(ctx.dataset)
cols = st.columns([1, 1.2, 1, 2, 1.3])
cols[0].metric("Customers", f"{figures['customers']:,}")
cols[1].metric("Revenue (net)", f"{figures['revenue']:,.0f}")
cols[2].metric("Orders", f"{figures['orders']:,}")
span = (f"{figures['first_date']:%b %Y} – {figures['last_date']:%b %Y}"
        if figures["first_date"] and figures["last_date"] else "not available")
cols[3].metric("Date range", span, help=f"{figures['first_date']} to {figures['last_date']}"
               if figures["first_date"] else None)
cols[4].metric("Snapshot date", f"{figures['snapshot']:%d %b %Y}")

if app_state.require_model(ctx):
    summary = dd.segment_summary(ctx.assigned, ctx.model)
    st.plotly_chart(charts.segment_share_chart(summary, ctx.colors), key="overview_shares")

concentration = app_state.concentration_for(ctx.data_key, ctx.dataset.customers["monetary"])
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.pareto_chart(ctx.dataset.customers["monetary"].to_numpy()), key="overview_pareto")
with right:
    st.plotly_chart(charts.lorenz_chart(concentration.lorenz, concentration.gini), key="overview_lorenz")
top = concentration.top_shares
st.caption(
    f"Top 1% of customers bring {top[0.01]:.0%} of revenue, top 10% {top[0.1]:.0%}, top 20% {top[0.2]:.0%}. "
    f"Gini {concentration.gini:.2f}, over the {concentration.customers:,} customers with positive net revenue"
    + (f" ({concentration.excluded_customers:,} with none left out)." if concentration.excluded_customers else ".")
)
