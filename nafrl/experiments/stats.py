"""Statistics of a sweep's results: bootstrap confidence intervals, probability of improvement,
interquartile mean and performance profiles.

Pure functions of numpy arrays (no files). The aggregate statistics follow Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS; the method behind
the ``rliable`` package): interquartile mean (IQM) of normalised scores, probability of improvement
P(X > Y), run-score performance profiles, all with *stratified* bootstrap confidence intervals
(runs are resampled within each task, never across tasks). ``rliable`` itself is not used (it
breaks on pandas 3); everything here is ``scipy.stats`` (``bootstrap``, ``trim_mean``,
``mannwhitneyu``).

Every interval is a percentile bootstrap interval (``method="percentile"``, as ``rliable``
reports) from ``scipy.stats.bootstrap`` with a fixed seed, so a report is reproducible. With
fewer than two observations there is nothing to resample and the interval is (NaN, NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
"""Confidence level of every interval."""
N_RESAMPLES = 2000
"""Bootstrap resamples per interval."""
SEED = 0
"""Seed of the bootstrap resampling (fixed so reports are reproducible)."""

Interval = tuple[float, float]
NAN_CI: Interval = (float("nan"), float("nan"))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over one sample (e.g. seeds).

    ``statistic(x, axis=-1)`` must be vectorised like ``np.mean``/``np.median``. Equals
    ``scipy.stats.bootstrap((values,), statistic, method="percentile",
    rng=np.random.default_rng(seed))``; (NaN, NaN) with fewer than two values.
    """
    x = np.asarray(values, float)
    if x.ndim != 1:
        raise ValueError(f"bootstrap_ci takes a 1-D sample, got shape {x.shape}")
    if x.size < 2:
        return NAN_CI
    if np.all(x == x[0]):
        # Every resample is the same sample; scipy would warn about a degenerate distribution.
        v = float(statistic(x, axis=-1))
        return (v, v)
    res = stats.bootstrap(
        (x,),
        statistic,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=_rng(seed),
    )
    ci = res.confidence_interval
    return (float(ci.low), float(ci.high))


def stratified_bootstrap_ci(
    strata: Sequence[Sequence[float] | np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified percentile bootstrap (Agarwal et al. 2021, section 4): each stratum (a task's
    runs, or one algorithm's runs on one task) is resampled with replacement independently of
    the others, and ``statistic(*strata, axis=-1)`` is recomputed on every resample.

    ``scipy.stats.bootstrap`` with several samples and ``paired=False`` is exactly this
    resampling. A stratum of one run has a single resample (itself), so it is held fixed rather
    than passed to scipy (which requires two observations per sample). ``statistic`` may return
    a scalar or a 1-D array (stacked on axis 0); returns (low, high) of that shape, NaN when no
    stratum has two or more runs.
    """
    arrays = [np.asarray(s, float) for s in strata]
    if not arrays or any(a.ndim != 1 or a.size == 0 for a in arrays):
        raise ValueError("stratified_bootstrap_ci takes non-empty 1-D strata")
    free = [i for i, a in enumerate(arrays) if a.size >= 2 and not np.all(a == a[0])]
    point = np.asarray(statistic(*arrays, axis=-1), float)
    if not free:
        # No stratum varies under resampling: the bootstrap distribution is the point value,
        # unless no stratum has two runs at all (then there is no interval to speak of).
        if all(a.size < 2 for a in arrays):
            return np.full(point.shape, np.nan), np.full(point.shape, np.nan)
        return point.copy(), point.copy()

    def wrapped(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        batch = resampled[0].shape[:-1]
        full: list[np.ndarray] = []
        it = iter(resampled)
        for i, a in enumerate(arrays):
            full.append(next(it) if i in free else np.broadcast_to(a, (*batch, a.size)))
        return statistic(*full, axis=axis)

    res = stats.bootstrap(
        tuple(arrays[i] for i in free),
        wrapped,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        paired=False,
        rng=_rng(seed),
    )
    ci = res.confidence_interval
    return np.asarray(ci.low, float), np.asarray(ci.high, float)


def iqm(values: Sequence[float] | np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (``scipy.stats.trim_mean(x, 0.25)``),
    Agarwal et al. 2021's robust and efficient aggregate."""
    return np.asarray(stats.trim_mean(np.asarray(values, float), 0.25, axis=axis))


def probability_of_improvement(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, axis: int = -1
) -> np.ndarray:
    """P(X > Y) of Agarwal et al. 2021 (section 5): over all pairs of a run x_i of algorithm X
    and a run y_j of Y, the fraction with x_i > y_j, ties counting one half. This is the
    Mann-Whitney U statistic of x divided by n_x * n_y (``scipy.stats.mannwhitneyu``)."""
    xa = np.asarray(x, float)
    ya = np.asarray(y, float)
    u = stats.mannwhitneyu(xa, ya, axis=axis, method="asymptotic").statistic
    return np.asarray(u, float) / (xa.shape[axis] * ya.shape[axis])


def probability_of_improvement_ci(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Stratified bootstrap interval of :func:`probability_of_improvement` on one task: X's and
    Y's runs are resampled independently (the two strata)."""
    lo, hi = stratified_bootstrap_ci(
        [x, y],
        probability_of_improvement,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    return float(lo), float(hi)


def ratio_of_medians(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, axis: int = -1
) -> np.ndarray:
    """median(x) / median(y), vectorised over leading axes (inf when median(y) is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.median(x, axis=axis) / np.median(y, axis=axis), float)


def ratio_of_medians_ci(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Stratified percentile bootstrap interval of :func:`ratio_of_medians`: x's and y's runs
    (e.g. the seeds of two methods) are resampled independently, as they are independent
    samples."""
    lo, hi = stratified_bootstrap_ci(
        [x, y], ratio_of_medians, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return float(lo), float(hi)


def normalise(scores: Sequence[float] | np.ndarray, random: float, best: float) -> np.ndarray:
    """Score normalised between the random agent (0) and the best (1): (s - random) /
    (best - random). Raises when best == random (no scale to normalise by)."""
    if not np.isfinite(random) or not np.isfinite(best) or best == random:
        raise ValueError(
            f"cannot normalise between random={random} and best={best}: "
            "they must be finite and different"
        )
    return (np.asarray(scores, float) - random) / (best - random)


def aggregate_iqm(
    per_task: Sequence[Sequence[float] | np.ndarray],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, Interval]:
    """IQM over every run of every task (the normalised scores of all tasks pooled), with a
    stratified bootstrap interval over tasks (runs resampled within each task)."""
    arrays = [np.asarray(a, float) for a in per_task]

    def stat(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        return iqm(np.concatenate(xs, axis=-1), axis=-1)

    point = float(stat(*arrays))
    lo, hi = stratified_bootstrap_ci(
        arrays, stat, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return point, (float(lo), float(hi))


def performance_profile(
    per_task: Sequence[Sequence[float] | np.ndarray],
    taus: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-score performance profile (Agarwal et al. 2021, section 5): for each threshold tau,
    the fraction of runs whose normalised score exceeds tau, averaged over tasks (each task
    weighs the same whatever its number of runs). Returns (fraction, low, high), each shaped
    like ``taus``, the band a stratified bootstrap interval."""
    arrays = [np.asarray(a, float) for a in per_task]
    t = np.asarray(taus, float)

    def stat(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        # Per task: fraction of runs above each tau -> shape (len(taus), *batch); then task mean.
        fr = [np.mean(x[..., None, :] > t[:, None], axis=-1) for x in xs]
        out = np.mean(np.stack(fr, axis=0), axis=0)  # (*batch, len(taus))
        return np.moveaxis(out, -1, 0)  # scipy wants several outputs on axis 0

    point = np.asarray(stat(*arrays), float)
    lo, hi = stratified_bootstrap_ci(
        arrays, stat, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return point, lo, hi


def curves_on_common_grid(
    curves: Sequence[tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Put learning curves evaluated at different x (episodes) on one grid.

    The grid is the union of all evaluation points between the latest first point and the
    earliest last point of the curves (the range every curve covers: a curve is never
    extrapolated, so the mean ends at the shortest run); each curve is linearly interpolated
    onto it. Returns (grid [G], values [n_curves, G]); G = 0 when the ranges do not overlap.
    """
    if not curves:
        raise ValueError("curves_on_common_grid needs at least one curve")
    xs = [np.asarray(c[0], float) for c in curves]
    ys = [np.asarray(c[1], float) for c in curves]
    for x, y in zip(xs, ys, strict=True):
        if x.size == 0 or x.shape != y.shape:
            raise ValueError("each curve needs equally many (x, y) points, at least one")
        if np.any(np.diff(x) < 0):
            raise ValueError("curve x values must be non-decreasing")
    lo = max(float(x[0]) for x in xs)
    hi = min(float(x[-1]) for x in xs)
    grid = np.unique(np.concatenate(xs))
    grid = grid[(grid >= lo) & (grid <= hi)]
    values = np.stack([np.interp(grid, x, y) for x, y in zip(xs, ys, strict=True)])
    return grid, values


def mean_and_band(
    values: np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) of curves [n_seeds, G] and a percentile bootstrap band of that
    mean at every grid point (NaN band with one seed)."""
    v = np.asarray(values, float)
    mean = v.mean(axis=0)
    if v.shape[0] < 2 or v.shape[1] == 0:
        nan = np.full(mean.shape, np.nan)
        return mean, nan, nan.copy()
    if np.all(v == v[:1]):
        return mean, mean.copy(), mean.copy()
    res = stats.bootstrap(
        (v,),
        np.mean,
        axis=0,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=_rng(seed),
    )
    ci = res.confidence_interval
    lo = np.where(np.all(v == v[:1], axis=0), mean, ci.low)
    hi = np.where(np.all(v == v[:1], axis=0), mean, ci.high)
    return mean, np.asarray(lo, float), np.asarray(hi, float)
