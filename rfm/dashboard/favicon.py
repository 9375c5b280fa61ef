"""The dashboard's browser-tab icon: a small segment donut as inline SVG.

Streamlit turns a `:material/...:` page icon into a link to fonts.gstatic.com, so every page load asked
Google for the icon; offline or behind a locked-down proxy that request failed (three tries per load)
and the tab had no icon. An SVG string becomes a data: URL in the page itself, so the
dashboard makes no request to another host.
"""

from __future__ import annotations

from rfm.dashboard.charts import NAME_COLORS

# A ring (r = 11, circumference 69.1) in three arcs with small gaps, starting at twelve o'clock, in the
# Champions, Loyal Customers and At-Risk colours of the charts.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<g fill="none" stroke-width="6" transform="rotate(-90 16 16)">'
    f'<circle cx="16" cy="16" r="11" stroke="{NAME_COLORS["champions"]}" stroke-dasharray="26.1 69.1"/>'
    f'<circle cx="16" cy="16" r="11" stroke="{NAME_COLORS["loyal"]}" stroke-dasharray="22.7 69.1" '
    'stroke-dashoffset="-27.6"/>'
    f'<circle cx="16" cy="16" r="11" stroke="{NAME_COLORS["atrisk"]}" stroke-dasharray="15.8 69.1" '
    'stroke-dashoffset="-51.8"/>'
    "</g></svg>"
)
