"""Every table of the dashboard through one function, so each shows human headers, the app's number
format (rfm.dashboard.format) and fits the page: `table(frame, key=..., currency=...)`.

Why: st.dataframe left alone shows snake_case headers, "1767.2849" and sizes columns to their
content, so a profiles table ran wider than a 1440 px page. Here the frame's share columns are
multiplied by 100 for display (the data behind the widget, never the data a page computes with),
and every column gets a label and a printf format through `st.column_config`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Literal

import pandas as pd
import streamlit as st

from rfm.dashboard import format as fmt


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with share columns (0..1) as percentages (0..100), for the "%.1f%%" format."""
    out = frame.copy()
    for column in fmt.share_columns(out.columns):
        out[column] = (out[column].astype("float64") * 100).round(1) + 0.0  # + 0.0: never "-0.0%"
    return out


def column_config(frame: pd.DataFrame, currency: str, *, wide: tuple[str, ...] = (),
                  overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Labels and formats for every column of `frame`; `wide` columns (long text) get a large width."""
    config: dict[str, Any] = {}
    for column, (label, printf) in fmt.column_formats(frame.columns, currency).items():
        width: Literal["large"] | None = "large" if column in wide else None
        if _holds_dates(frame[column]):  # a TextColumn would show a date as milliseconds since 1970
            config[column] = st.column_config.DateColumn(label, format="YYYY-MM-DD", width=width)
        elif printf is None:
            config[column] = st.column_config.TextColumn(label, width=width)
        else:
            config[column] = st.column_config.NumberColumn(label, format=printf, width=width)
    config.update(overrides or {})
    return config


def _holds_dates(values: pd.Series) -> bool:
    """Whether a column holds dates (datetime64, or Python dates as pandas keeps them: objects)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    sample = values.dropna()
    return values.dtype == object and len(sample) > 0 and isinstance(sample.iloc[0], date)


ROW_PX = 35  # st.dataframe's row (and header) height


def table(frame: pd.DataFrame, *, key: str, currency: str, wide: tuple[str, ...] = (),
          overrides: Mapping[str, Any] | None = None, height: int | Literal["auto"] = "auto",
          fit_rows: bool = False) -> None:
    """A read-only table in the app's format, as wide as the page (never wider); `fit_rows`: tall
    enough for every row (a short table that must be read whole, not scrolled)."""
    if fit_rows:
        height = ROW_PX * (len(frame) + 1) + 3
    st.dataframe(display_frame(frame), hide_index=True, key=key, width="stretch", height=height, placeholder="–",
                 column_config=column_config(frame, currency, wide=wide, overrides=overrides))


def markdown_table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[object]]) -> str:
    """A small table as Markdown for `st.markdown` (columns: (header, "left" or "right")): its cells
    wrap, so a table of long labels reads whole at 390 px where an st.dataframe would scroll sideways."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(name) for name, _ in columns) + " |"
    rule = "|" + "|".join("---:" if align == "right" else ":---" for _, align in columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])
