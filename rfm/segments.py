"""The named RFM segments of the R x F score grid.

The classic grid used by marketers: recency score (1-5, 5 = most recent) against frequency score
(1-5, 5 = most frequent). Every one of the 25 cells belongs to exactly one segment.
"""

from __future__ import annotations

# (segment, recency scores, frequency scores): the cells are the cross product of the two.
SEGMENT_CELLS: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("hibernating", (1, 2), (1, 2)),
    ("at risk", (1, 2), (3, 4)),
    ("can't lose", (1, 2), (5,)),
    ("about to sleep", (3,), (1, 2)),
    ("need attention", (3,), (3,)),
    ("loyal", (3, 4), (4, 5)),
    ("promising", (4,), (1,)),
    ("new customers", (5,), (1,)),
    ("potential loyalists", (4, 5), (2, 3)),
    ("champions", (5,), (4, 5)),
)

SEGMENTS: tuple[str, ...] = tuple(name for name, _, _ in SEGMENT_CELLS)

SEGMENT_DESCRIPTIONS: dict[str, str] = {
    "champions": "Bought recently, buy often and spend the most.",
    "loyal": "Buy regularly; respond to loyalty programmes.",
    "potential loyalists": "Recent customers with a few purchases: nurture them into loyal ones.",
    "new customers": "Bought for the first time very recently.",
    "promising": "Recent but infrequent buyers.",
    "need attention": "Average recency and frequency: at risk of slipping.",
    "about to sleep": "Below average recency and frequency: reactivate before they are lost.",
    "at risk": "Used to buy often, have not bought for a while.",
    "can't lose": "Were among the most frequent buyers and have gone quiet: win them back.",
    "hibernating": "Last bought long ago and rarely: low priority.",
}


def rf_grid() -> dict[tuple[int, int], str]:
    """All 25 (r_score, f_score) cells and their segment."""
    grid: dict[tuple[int, int], str] = {}
    for name, recency_scores, frequency_scores in SEGMENT_CELLS:
        for r in recency_scores:
            for f in frequency_scores:
                grid[(r, f)] = name
    return grid


def segment_of(r_score: int, f_score: int) -> str:
    """The named segment of one R x F cell."""
    try:
        return rf_grid()[(int(r_score), int(f_score))]
    except KeyError:
        raise ValueError(f"scores must be 1-5, got r={r_score}, f={f_score}") from None


def segment_case_sql(r_column: str = "r_score", f_column: str = "f_score") -> str:
    """The same grid as a SQL CASE expression, so the engine names the segments."""
    branches = []
    for name, recency_scores, frequency_scores in SEGMENT_CELLS:
        r_list = ", ".join(str(r) for r in recency_scores)
        f_list = ", ".join(str(f) for f in frequency_scores)
        literal = "'" + name.replace("'", "''") + "'"
        branches.append(f"WHEN {r_column} IN ({r_list}) AND {f_column} IN ({f_list}) THEN {literal}")
    return "CASE " + " ".join(branches) + " END"
