"""Score: one customer (typed in or picked by id) through the configured scoring client."""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import charts, tables
from rfm.dashboard import format as fmt
from rfm.dashboard import state as app_state
from rfm.errors import RfmError
from rfm.service import insights, segmentation

ctx = app_state.context()
app_state.page_header("Score", ctx)
state = st.session_state

mode = st.radio("Customer", ["Enter RFM values", "Pick an existing customer"], horizontal=True, key="score_mode")
values: dict[str, float] | None = None
if mode == "Enter RFM values":
    with st.form("score_form"):
        cols = st.columns(3)
        recency = cols[0].number_input("Recency (days since last purchase)", min_value=0, step=1,
                                       value=int(insights.EXAMPLE_CUSTOMER["recency"]), key="score_recency")
        # At least one order: every customer of an RFM table has bought once (0 orders with a spend is
        # not a customer the model can have seen).
        frequency = cols[1].number_input("Frequency (orders)", min_value=1, step=1,
                                         value=int(insights.EXAMPLE_CUSTOMER["frequency"]), key="score_frequency")
        monetary = cols[2].number_input(f"Spend ({ctx.currency}, {ctx.dataset.returns.label})", step=10.0,
                                        format="%.2f", value=float(insights.EXAMPLE_CUSTOMER["monetary"]),
                                        key="score_monetary")
        if st.form_submit_button("Score", type="primary"):
            problem = insights.customer_problem(recency, frequency, monetary)
            if problem:
                st.error(problem)
                state.pop("score_values", None)
            else:
                state["score_values"] = {"recency": recency, "frequency": frequency, "monetary": monetary}
    values = state.get("score_values")
else:
    customer_id = st.text_input("Customer id", key="score_customer",
                                placeholder=str(ctx.dataset.customers["customer_id"].iloc[0]))
    if customer_id.strip():
        try:
            row = insights.lookup_customer(ctx.assigned if ctx.assigned is not None else ctx.dataset.customers,
                                     customer_id)
            values = {"recency": int(row["recency"]), "frequency": int(row["frequency"]),
                      "monetary": float(row["monetary"])}
            st.caption(f"Customer {row['customer_id']}: last bought {fmt.days(values['recency'])} ago, "
                       f"{fmt.orders(values['frequency'])}, spent {fmt.money(values['monetary'], ctx.currency, 2)}")
        except RfmError as exc:
            st.error(str(exc))

if values is not None:
    try:
        client = ctx.scoring_client()
        scored = client.score(values["recency"], values["frequency"], values["monetary"])
    except RfmError as exc:
        st.error(f"Scoring failed: {exc}")
    else:
        answer = scored.as_dict()
        color = ctx.colors.get(answer["segment"], charts.NOT_SEGMENTED_COLOR)
        centroid = None
        if ctx.model is not None and answer["cluster"] >= 0 and answer["cluster"] < ctx.model.k:
            centroid = ctx.model.clusters[answer["cluster"]].centroid
        st.markdown(f"### :material/label: {fmt.colored(answer['segment'], color)}")
        default_name = segmentation.default_names(ctx.model).get(answer["segment"]) if ctx.model else None
        entry = segmentation.playbook_entry(answer["segment"], ctx.playbook, default_name)
        st.markdown(fmt.markdown_text(entry.description))
        st.markdown(f"**Recommended action:** {fmt.markdown_text(entry.action)}")
        if centroid:
            st.caption(f"Typical customer of this segment: last bought {fmt.days(centroid['recency'])} ago, "
                       f"{fmt.orders(centroid['frequency'])}, {fmt.money(centroid['monetary'], ctx.currency)} spent.")
        st.caption(f"Cluster {answer['cluster']} · model {answer['model_version']} · scored by {client.describe()}")
        if ctx.model is not None and ctx.model.version == answer["model_version"]:
            position = insights.customer_position(ctx.model, **values)
            st.plotly_chart(charts.position_chart(position, values, ctx.colors, ctx.currency), key="score_position",
                            config={"displayModeBar": False})
            tables.table(position, key="score_distances", currency=ctx.currency,
                         overrides={"recency": st.column_config.NumberColumn("Recency (days)", format="%,.1f"),
                                    "frequency": st.column_config.NumberColumn("Orders", format="%,.1f"),
                                    "distance": st.column_config.NumberColumn("Distance (model space)",
                                                                              format="%.2f")})
        with st.expander("Response"):
            st.json(answer)
