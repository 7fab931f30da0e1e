"""The paper's metrics (Table 1): best test reward, and episodes to reach within 5% of it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def threshold(best: float, tol: float = 0.05) -> float:
    """The level 'within tol of best': best - tol * |best| (works for negative rewards)."""
    return best - tol * abs(best)


def episodes_to_reach(
    episodes: Sequence[float] | np.ndarray, test_returns: Sequence[float] | np.ndarray, level: float
) -> float:
    """First episode whose test reward is >= level; NaN if never reached."""
    ep = np.asarray(episodes, float)
    r = np.asarray(test_returns, float)
    hit = np.flatnonzero(r >= level)
    return float(ep[hit[0]]) if hit.size else float("nan")


def best_and_episodes(
    episodes: Sequence[float] | np.ndarray,
    test_returns: Sequence[float] | np.ndarray,
    tol: float = 0.05,
) -> tuple[float, float]:
    """(best test reward, episodes to reach within ``tol`` of it) for one run."""
    best = float(np.max(test_returns))
    return best, episodes_to_reach(episodes, test_returns, threshold(best, tol))


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    v = np.asarray(values, float)
    if window <= 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.minimum(np.arange(1, v.size + 1), window)
    return (c[1:] - c[np.arange(1, v.size + 1) - n]) / n
