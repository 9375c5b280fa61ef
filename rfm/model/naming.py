"""Default business names for clusters, from their centroids in original units.

k=4 gets the names marketers know (Champions, Loyal Customers, At Risk, Hibernating). Other k are
named from the cell of the classic R x F grid (rfm.segments) their centroid falls in, with the
scores computed against the training customers exactly as the RFM query scores customers, and made
unique within the model (clusters in the same cell are told apart by spend).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rfm.errors import ModelError, short_repr
from rfm.segments import segment_of

FOUR_NAMES: tuple[str, ...] = ("Champions", "Loyal Customers", "At Risk", "Hibernating")
MAX_NAME_LENGTH = 60
NOT_SEGMENTED = -1  # cluster id given to customers with zero or negative net monetary
NOT_SEGMENTED_NAME = "No Net Revenue"


def value_order(scaled_centers: np.ndarray) -> np.ndarray:
    """Cluster indices from most to least valuable: recent, frequent, high spend (in scaled units,
    so each feature weighs the same)."""
    value = -scaled_centers[:, 0] + scaled_centers[:, 1] + scaled_centers[:, 2]
    return np.argsort(-value, kind="stable")


def default_names(centroids: np.ndarray, training: np.ndarray, value_rank: Sequence[int]) -> list[str]:
    """One unique name per cluster.

    `centroids` are (k, 3) in original units, `training` the (n, 3) trained RFM values and
    `value_rank[i]` the position of cluster i from most (0) to least valuable.
    """
    k = len(centroids)
    rank = np.asarray(value_rank)
    if k == 4:
        # Best and worst by value; of the middle two, the one that bought more recently is loyal and
        # the one that has not bought for longer is at risk (at risk is about recency).
        middle = [i for i in range(4) if rank[i] in (1, 2)]
        loyal, at_risk = sorted(middle, key=lambda i: (centroids[i, 0], rank[i]))
        names = [""] * 4
        names[int(np.flatnonzero(rank == 0)[0])] = FOUR_NAMES[0]
        names[loyal] = FOUR_NAMES[1]
        names[at_risk] = FOUR_NAMES[2]
        names[int(np.flatnonzero(rank == 3)[0])] = FOUR_NAMES[3]
        return names
    cells = [grid_name(c[0], c[1], training) for c in centroids]
    return _unique(cells, centroids[:, 2])


def grid_name(recency: float, frequency: float, training: np.ndarray) -> str:
    """The R x F segment a (recency, frequency) point falls in, scored like the RFM query:
    score = 1 + floor(5 * (customers ranked before it) / customers)."""
    n = len(training)
    r_score = 1 + int(np.floor(5 * np.count_nonzero(training[:, 0] > recency) / n))
    f_score = 1 + int(np.floor(5 * np.count_nonzero(training[:, 1] < frequency) / n))
    return title(segment_of(min(r_score, 5), min(f_score, 5)))


def title(segment: str) -> str:
    """'can't lose' -> "Can't Lose" (str.title would give "Can'T")."""
    return " ".join(word[:1].upper() + word[1:] for word in segment.split())


def _unique(names: list[str], monetary: np.ndarray) -> list[str]:
    """Clusters sharing a grid cell are told apart by their centroid's spend."""
    out = list(names)
    for name in set(names):
        members = [i for i, n in enumerate(names) if n == name]
        if len(members) < 2:
            continue
        members.sort(key=lambda i: -monetary[i])
        tiers = ("High Spend", "Low Spend") if len(members) == 2 else ("High Spend", "Mid Spend", "Low Spend")
        for position, i in enumerate(members):
            tier = tiers[position] if len(members) <= 3 else f"Spend Rank {position + 1}"
            out[i] = f"{name} ({tier})"
    return out


def check_name(name: str, others: Sequence[str]) -> str:
    """A new cluster name: non-empty, one line of printable characters (no control or format characters,
    such as a terminal's escape sequences), not too long, unique in the model (case-insensitive)."""
    cleaned = " ".join(str(name).split())
    if not cleaned:
        raise ModelError("a segment name cannot be empty")
    bad = next((c for c in cleaned if not c.isprintable()), None)
    if bad is not None:  # control characters (an ANSI escape), format characters, unassigned code points
        raise ModelError(f"a segment name holds only printable characters; got {bad!r} at position "
                         f"{cleaned.index(bad) + 1} of {short_repr(cleaned[:MAX_NAME_LENGTH], 70)}")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ModelError(f"a segment name has at most {MAX_NAME_LENGTH} characters, got {len(cleaned)}")
    if cleaned.casefold() == NOT_SEGMENTED_NAME.casefold():
        raise ModelError(f"{NOT_SEGMENTED_NAME!r} is reserved for customers with no net revenue")
    clash = [o for o in others if o.casefold() == cleaned.casefold()]
    if clash:
        raise ModelError(f"another cluster is already named {clash[0]!r}; segment names must be unique")
    return cleaned
