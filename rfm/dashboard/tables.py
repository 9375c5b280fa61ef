"""Every table of the dashboard through one function, so each shows human headers, the app's number
format (rfm.dashboard.format) and fits the page: `table(frame, key=..., currency=...)`, a data grid; or,
for a short summary read whole (the segment profiles), `markdown_frame(frame, currency)`, the same
headers and figures as a Markdown table.

Why: st.dataframe left alone shows snake_case headers, "1767.2849" and sizes columns to their
content, so a profiles table ran wider than a 1440 px page. Here the frame's share columns are
multiplied by 100 for display (the data behind the widget, never the data a page computes with),
and every column gets a label and, numbers other than money and shares, a printf format through
`st.column_config`.

Money and shares are shown through a pandas Styler (`styled`): a printf format writes a negative amount
as "£-76" and a negative share as "-1.2%", where the rest of the app writes "−£76" and "−1.2%".
st.dataframe shows a Styler's text in a number column that has no printf format (a `column_config`
format would take precedence) and keeps the numbers underneath, so a click on the header still sorts
by amount, not alphabetically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import streamlit as st

from rfm.dashboard import format as fmt

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with share columns (0..1) as percentages (0..100): what a click on a share header sorts
    (its text is `fmt.percent`'s, see `styled`)."""
    out = frame.copy()
    for column in fmt.share_columns(out.columns):
        out[column] = (out[column].astype("float64") * 100).round(1) + 0.0  # + 0.0: never "-0.0%"
    return out


def styled(frame: pd.DataFrame, currency: str, *, key: str, decimals: Mapping[str, int] | None = None) -> Styler:
    """What st.dataframe (or st.data_editor) is given: `display_frame(frame)` as a Styler whose money
    columns read as `fmt.money` writes them ("−£76", "£4,541,272"; `decimals`: places per column, 0
    unless given) and its share columns as `fmt.percent` does ("−1.2%"), over the unchanged numbers.
    Other cells show their value ("–" when missing); their printf formats come from `column_config`,
    which takes precedence over a Styler's text.

    `key` names the Styler (its uuid), so a rerun with the same data sends the same table."""
    shown = display_frame(frame)
    styler = shown.style.format(na_rep="–")
    for column in fmt.money_columns(shown.columns):
        places = (decimals or {}).get(column, 0)
        styler = styler.format(partial(_money_text, currency=currency, decimals=places), subset=[column])
    for column in fmt.share_columns(shown.columns):  # "−1.2%" like `fmt.percent`, not printf's "-1.2%"
        styler = styler.format(_percent_text, subset=[column])
    return styler.set_uuid(key)


def _percent_text(value: object) -> str:
    """`fmt.percent` of a cell of `display_frame` (already multiplied by 100; missing: "–")."""
    number = _cell_number(value)
    return fmt.percent(None if number is None else number / 100)


def _money_text(value: object, *, currency: str, decimals: int) -> str:
    """`fmt.money` of a cell (None, NaN or a non-number: "–")."""
    return fmt.money(_cell_number(value), currency, decimals)


def _cell_number(value: object) -> float | None:
    """A table cell as a float (None for a missing or non-numeric cell; NaN stays NaN, which the fmt
    functions write as "–")."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def column_config(frame: pd.DataFrame, *, wide: tuple[str, ...] = (),
                  overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Labels and formats for every column of `frame`; `wide` columns (long text) get a large width.
    Money and share columns get no format: their text is the Styler's (`styled`)."""
    config: dict[str, Any] = {}
    for column, (label, kind, printf) in fmt.column_formats(frame.columns).items():
        width: Literal["large"] | None = "large" if column in wide else None
        if _holds_dates(frame[column]):  # a TextColumn would show a date as milliseconds since 1970
            config[column] = st.column_config.DateColumn(label, format="YYYY-MM-DD", width=width)
        elif kind in ("money", "share"):  # their text is the Styler's
            config[column] = st.column_config.NumberColumn(label, width=width)
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
          overrides: Mapping[str, Any] | None = None, decimals: Mapping[str, int] | None = None,
          height: int | Literal["auto"] = "auto", fit_rows: bool = False) -> None:
    """A read-only table in the app's format, as wide as the page (never wider); `decimals`: places of
    a money column (0 unless given); `overrides`: column configs (never a format on a money column,
    which would replace `fmt.money`'s text); `fit_rows`: tall enough for every row (a short table that
    must be read whole, not scrolled)."""
    if fit_rows:
        height = ROW_PX * (len(frame) + 1) + 3
    st.dataframe(styled(frame, currency, key=key, decimals=decimals), hide_index=True, key=key, width="stretch",
                 height=height, placeholder="–", column_config=column_config(frame, wide=wide, overrides=overrides))


def markdown_table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[object]]) -> str:
    """A small table as Markdown for `st.markdown` (columns: (header, "left" or "right")): its cells
    wrap, so a table of long labels reads whole at 390 px where an st.dataframe would scroll sideways."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(name) for name, _ in columns) + " |"
    rule = "|" + "|".join("---:" if align == "right" else ":---" for _, align in columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def markdown_frame(frame: pd.DataFrame, currency: str, *, decimals: Mapping[str, int] | None = None) -> str:
    """A small frame as a Markdown table (`markdown_table`) in the app's format: human headers, numbers
    right-aligned and written as the grid tables write them (`fmt.cell`), text escaped (`fmt.markdown_text`).
    For summaries read whole, such as the segment profiles: its cells wrap on a phone, and the page needs
    no data grid (whose code the browser loads and compiles on the first page that shows one)."""
    formats = fmt.column_formats(frame.columns)
    columns = [(label, "left" if kind == "text" else "right") for label, kind, _ in formats.values()]
    rows = [[_markdown_cell(value, formats[column][1], currency, (decimals or {}).get(column))
             for column, value in zip(frame.columns, row, strict=True)] for row in frame.itertuples(index=False)]
    return markdown_table(columns, rows)


def _markdown_cell(value: object, kind: str, currency: str, decimals: int | None) -> str:
    text = fmt.cell(value, kind, currency, decimals)
    return fmt.markdown_text(text) if kind == "text" else text
