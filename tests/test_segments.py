"""The R x F segment grid: every cell has exactly one segment, in Python and in SQL alike."""

import duckdb
import pytest

from rfm.segments import SEGMENT_CELLS, SEGMENTS, rf_grid, segment_case_sql, segment_of


def test_every_one_of_the_25_cells_maps_to_exactly_one_segment():
    owners: dict[tuple[int, int], list[str]] = {}
    for name, recency_scores, frequency_scores in SEGMENT_CELLS:
        for r in recency_scores:
            for f in frequency_scores:
                owners.setdefault((r, f), []).append(name)
    assert sorted(owners) == [(r, f) for r in range(1, 6) for f in range(1, 6)]
    assert all(len(names) == 1 for names in owners.values()), owners
    assert set(rf_grid().values()) == set(SEGMENTS)
    assert len(SEGMENTS) == 10


@pytest.mark.parametrize(
    ("r", "f", "expected"),
    [(5, 5, "champions"), (5, 4, "champions"), (1, 1, "hibernating"), (2, 5, "can't lose"),
     (1, 3, "at risk"), (3, 3, "need attention"), (3, 1, "about to sleep"), (4, 4, "loyal"),
     (3, 5, "loyal"), (4, 1, "promising"), (5, 1, "new customers"), (5, 2, "potential loyalists"),
     (4, 3, "potential loyalists")],
)
def test_known_cells(r, f, expected):
    assert segment_of(r, f) == expected


def test_scores_outside_1_to_5_are_refused():
    with pytest.raises(ValueError, match="1-5"):
        segment_of(0, 3)


def test_sql_case_names_every_cell_as_the_python_grid_does():
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT r_score, f_score, {segment_case_sql()} FROM range(1, 6) r(r_score), range(1, 6) f(f_score)"
    ).fetchall()
    assert len(rows) == 25
    assert {(r, f): name for r, f, name in rows} == rf_grid()
