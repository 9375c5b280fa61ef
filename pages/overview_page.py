"""Overview: headline figures, segment sizes beside revenue share, revenue concentration, and the data
panel (what cleaning dropped and how the raw lines' revenue becomes the revenue shown)."""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import format as fmt
from rfm.dashboard import state as app_state
from rfm.dashboard import tables
from rfm.service import insights

ctx = app_state.context()
app_state.page_header("Overview", ctx)
currency = ctx.currency

figures = insights.kpis(ctx.dataset)
cols = st.columns([0.9, 1.3, 0.9, 1.3, 1.2])
cols[0].metric("Customers", fmt.count(figures.customers))
cols[1].metric(insights.revenue_label(ctx.dataset.returns), fmt.money(figures.revenue, currency),
               help=f"What the customers below spent, in {currency}: "
                    + insights.revenue_help(ctx.dataset.returns))
cols[2].metric("Orders", fmt.count(figures.orders), help="Invoices with at least one purchase line.")
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
    f"Top 1% of customers bring {fmt.percent(top[0.01])} of revenue, top 10% {fmt.percent(top[0.1])}, "
    f"top 20% {fmt.percent(top[0.2])}. Gini {concentration.gini:.2f}, over the {fmt.count(concentration.customers)} "
    "customers with positive revenue"
    + (f" ({fmt.count(concentration.excluded_customers)} with none left out)."
       if concentration.excluded_customers else ".")
)

# --- the data panel: what was read, what cleaning dropped, where the revenue went -----------------
st.subheader("The data behind these figures")
report = ctx.dataset.cleaning
reconciliation = ctx.dataset.reconciliation
if report is None or reconciliation is None:
    st.caption(f"**{ctx.dataset.label}** was cleaned before it reached the dashboard (`rfm ingest`, or an "
               "Athena table), so there is no cleaning report or reconciliation to show here.")
else:
    for note in report.repeated_files_lines():  # a folder holding one log twice: counted once, said here
        st.warning(note, icon=":material/content_copy:")
    st.markdown(f"**Revenue, from every line read to the figure shown** ({currency}, "
                f"{ctx.dataset.returns.label})")
    # Markdown tables, not st.dataframe: their cells wrap, so the whole table reads on a phone too.
    lines = [("revenue of every line read", fmt.count(reconciliation.raw_lines),
              fmt.money(reconciliation.raw_revenue, currency, 2))]
    lines += [(step.step, "" if step.lines is None else fmt.count(step.lines), fmt.money(step.revenue, currency, 2))
              for step in reconciliation.steps]
    lines.append(("**revenue shown**", "", f"**{fmt.money(reconciliation.shown, currency, 2)}**"))
    st.markdown(tables.markdown_table([("Step", "left"), ("Lines", "right"), ("Revenue", "right")], lines))
    st.download_button("Download the reconciliation (CSV)", data=reconciliation.csv(),
                       file_name="revenue-reconciliation.csv", mime="text/csv",
                       icon=":material/download:", key="overview_reconciliation_download")
    st.markdown("**Cleaning report**")
    rows = insights.cleaning_rows(report)
    st.markdown(tables.markdown_table([("Step", "left"), ("Value", "right")], [
        (step, fmt.figure(value, kind, currency)) for step, value, kind in zip(
            rows["step"], rows["value"], rows["kind"], strict=True)]))
    st.caption("A line is counted under the first rule that drops it. Customers are those with a purchase "
               "before the snapshot; orders are their purchase invoices.")
