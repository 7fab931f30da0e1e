"""Priors that make per-time-step linear-Gaussian fits well-posed with few episodes (section 5.3).

With n = 5 episodes and tens of dimensions the empirical covariance of [x_t; u_t; x_{t+1}]
at one time step has rank at most 4. Levine & Abbeel (2014, guided policy search) fill the
missing directions with a prior fitted on *all* recent points, pooled over time steps: a
normal-inverse-Wishart (NIW) prior (mu0, Phi, m, n0) whose MAP covariance is

    Sigma_t = (N S_t + Phi_t + N m / (N + m) (mu_t - mu0_t)(mu_t - mu0_t)^T) / (N + n0),

with N episodes, empirical mean mu_t and (maximum-likelihood) covariance S_t. The mean is
kept at the empirical mu_t so the fitted offset f_t stays unbiased (as in GPS).

Two priors share the interface ``update(x, u)`` (append episodes, keep the last
``max_episodes``) and ``eval(pts) -> NIW``:

* :class:`GaussianPrior` -- one Gaussian over all pooled points.
* :class:`GMMPrior` -- a Gaussian mixture over the pooled points (EM); for time step t the
  mixture is collapsed with the average responsibilities of that step's points, so each
  step borrows the covariance structure of the region of state space it visits.

The prior's strength is counted in pseudo-episodes: m = n0 = ``strength`` and
Phi = n0 * Sigma0. Statistics are computed in float64 NumPy (fits run every n episodes,
not in the hot loop, and covariances of near-deterministic simulators are ill-conditioned).
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple, Protocol

import numpy as np

from nafrl.models.base import Array, check_episodes
from nafrl.runtime import blas_threads


class NIW(NamedTuple):
    """Normal-inverse-Wishart prior per time step; leading axis T (or none).

    Attributes:
        mu0: (T, D) prior mean.
        Phi: (T, D, D) prior scatter matrix (n0 times the prior covariance).
        m: prior strength of the mean (pseudo-samples).
        n0: prior strength of the covariance (pseudo-samples).
    """

    mu0: np.ndarray
    Phi: np.ndarray
    m: float
    n0: float


class DynamicsPrior(Protocol):
    """What :class:`~nafrl.models.LinearGaussianDynamics` needs from a prior."""

    def update(self, x: Array, u: Array) -> None:
        """Add episodes x (E, T+1, dx), u (E, T, du) to the prior's data."""
        ...

    def eval(self, pts: np.ndarray) -> NIW:
        """Prior for each time step given its points pts (T, N, D), D = 2 dx + du."""
        ...


def pooled_points(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Stack [x_t; u_t; x_{t+1}] of every episode and step: (T, E, 2 dx + du), time-major."""
    z = np.concatenate([x[:, :-1], u, x[:, 1:]], axis=-1)
    return np.swapaxes(z, 0, 1)


def niw_posterior(mu: np.ndarray, S: np.ndarray, N: int, prior: NIW) -> np.ndarray:
    """MAP covariance (T, D, D) from the empirical mean mu (T, D) and covariance S (T, D, D)
    of N points per step."""
    d = mu - prior.mu0
    shrink = N * prior.m / (N + prior.m)
    sigma = (N * S + prior.Phi + shrink * d[..., :, None] * d[..., None, :]) / (N + prior.n0)
    return 0.5 * (sigma + np.swapaxes(sigma, -1, -2))


class _EpisodeStore:
    """The last ``max_episodes`` episodes, shared by both priors."""

    def __init__(self, max_episodes: int) -> None:
        if max_episodes < 1:
            raise ValueError(f"max_episodes must be >= 1, got {max_episodes}")
        self.max_episodes = int(max_episodes)
        self.x: np.ndarray | None = None
        self.u: np.ndarray | None = None

    def add(self, x: Array, u: Array, who: str) -> None:
        x, u = check_episodes(x, u, who)
        if self.x is not None and self.u is not None and self.x.shape[1:] == x.shape[1:]:
            x = np.concatenate([self.x, x])
            u = np.concatenate([self.u, u])
        self.x, self.u = x[-self.max_episodes :], u[-self.max_episodes :]

    def points(self) -> np.ndarray:
        if self.x is None or self.u is None:
            raise RuntimeError("the prior has no data yet; call update(x, u) first")
        return pooled_points(self.x, self.u).reshape(-1, 2 * self.x.shape[2] + self.u.shape[2])


class GaussianPrior:
    """One Gaussian over all [x; u; x'] points of the last ``max_episodes`` episodes.

    Args:
        max_episodes: how many recent episodes the prior keeps.
        strength: m = n0, the prior's weight in pseudo-episodes.
        reg: ridge added to the pooled covariance.
    """

    def __init__(self, max_episodes: int = 20, strength: float = 1.0, reg: float = 1e-6) -> None:
        if strength <= 0:
            raise ValueError(f"strength must be > 0, got {strength}")
        self._store = _EpisodeStore(max_episodes)
        self.strength, self.reg = float(strength), float(reg)
        self.mean: np.ndarray | None = None
        self.cov: np.ndarray | None = None

    def update(self, x: Array, u: Array) -> None:
        self._store.add(x, u, "GaussianPrior")
        pts = self._store.points()
        self.mean = pts.mean(0)
        diff = pts - self.mean
        self.cov = diff.T @ diff / len(pts) + self.reg * np.eye(pts.shape[1])

    def eval(self, pts: np.ndarray) -> NIW:
        if self.mean is None or self.cov is None:
            raise RuntimeError("GaussianPrior.eval before update")
        T = pts.shape[0]
        mu0 = np.broadcast_to(self.mean, (T, self.mean.size))
        Phi = np.broadcast_to(self.strength * self.cov, (T, *self.cov.shape))
        return NIW(mu0.copy(), Phi.copy(), self.strength, self.strength)


class GMM(NamedTuple):
    """Gaussian mixture: weights (K,), means (K, D), covs (K, D, D)."""

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray


def gmm_log_resp(gmm: GMM, X: np.ndarray) -> np.ndarray:
    """Log responsibilities log p(k | x) for points X (..., D): (..., K)."""
    L = np.linalg.cholesky(gmm.covs)  # (K, D, D)
    Linv = np.linalg.inv(L)
    diff = X[..., None, :] - gmm.means  # (..., K, D)
    sol = np.stack([diff[..., j, :] @ Linv[j].T for j in range(len(Linv))], axis=-2)
    logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    logp = -0.5 * (sol**2).sum(-1) - 0.5 * logdet + np.log(gmm.weights)
    return logp - _logsumexp(logp, axis=-1)[..., None]


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    amax = a.max(axis=axis, keepdims=True)
    return np.log(np.exp(a - amax).sum(axis=axis)) + np.squeeze(amax, axis=axis)


def single_threaded_blas() -> contextlib.AbstractContextManager[None]:
    """NumPy's BLAS on one thread inside the block (:func:`nafrl.runtime.blas_threads`)."""
    return blas_threads(1)


def fit_gmm(
    X: np.ndarray,
    n_clusters: int,
    iterations: int = 100,
    reg: float = 1e-6,
    tol: float = 1e-4,
    init: GMM | None = None,
) -> GMM:
    """Fit a Gaussian mixture to X (N, D) by EM, in standardised coordinates.

    Initialised from ``init`` (a previous mixture with ``n_clusters`` components, as GPS
    warm-starts its prior) or else by cutting X into ``n_clusters`` contiguous chunks (pass
    time-major points so each initial cluster is a stretch of time steps). ``reg`` is added
    to each standardised covariance; EM stops when the mean log-likelihood per point changes
    by less than ``tol``. Returns the mixture in the original coordinates.
    """
    N, D = X.shape
    K = int(max(1, min(n_clusters, N)))
    loc, scale = X.mean(0), X.std(0) + 1e-8
    Z = (X - loc) / scale
    eye = np.eye(D)
    if init is not None and init.means.shape == (K, D):
        start = GMM(
            init.weights,
            (init.means - loc) / scale,
            init.covs / scale[:, None] / scale[None, :] + reg * eye,
        )
        resp = np.exp(gmm_log_resp(start, Z))
    else:
        resp = np.zeros((N, K))
        resp[np.arange(N), np.minimum(np.arange(N) * K // N, K - 1)] = 1.0
    prev_ll = -np.inf
    gmm = GMM(np.full(K, 1.0 / K), np.zeros((K, D)), np.tile(eye, (K, 1, 1)))
    for _ in range(iterations):
        # M step (per-component BLAS products; stacked matmuls are slow in NumPy).
        Nk = resp.sum(0) + 1e-10
        weights = Nk / N
        means = resp.T @ Z / Nk[:, None]
        diff = Z[None] - means[:, None]  # (K, N, D)
        covs = np.stack([(diff[j] * resp[:, j : j + 1]).T @ diff[j] for j in range(K)])
        covs = covs / Nk[:, None, None]
        covs = 0.5 * (covs + np.swapaxes(covs, -1, -2)) + reg * eye
        gmm = GMM(weights, means, covs)
        # E step
        L = np.linalg.cholesky(covs)
        Linv = np.linalg.inv(L)
        sol = np.stack([diff[j] @ Linv[j].T for j in range(K)])  # L^{-1} (z - mu_k)
        logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
        logp = (-0.5 * (sol**2).sum(-1) - 0.5 * logdet[:, None] + np.log(weights)[:, None]).T
        lse = _logsumexp(logp, axis=1)
        resp = np.exp(logp - lse[:, None])
        ll = float(lse.mean())
        if abs(ll - prev_ll) < tol:
            break
        prev_ll = ll
    means = gmm.means * scale + loc
    covs = gmm.covs * scale[:, None] * scale[None, :]
    return GMM(gmm.weights, means, covs)


class GMMPrior:
    """Gaussian-mixture prior over pooled [x; u; x'] points (Levine & Abbeel 2014).

    Args:
        max_episodes: how many recent episodes the mixture is fitted on (GPS: 20).
        max_clusters: upper bound on mixture components.
        min_samples_per_cluster: K = min(max_clusters, points // min_samples_per_cluster).
        strength: m = n0, the prior's weight in pseudo-episodes.
        iterations: maximum EM iterations per update (stops early when the log-likelihood
            settles; warm-started from the previous mixture).
        reg: ridge on each standardised component covariance.
    """

    def __init__(
        self,
        max_episodes: int = 20,
        max_clusters: int = 20,
        min_samples_per_cluster: int = 40,
        strength: float = 1.0,
        iterations: int = 50,
        reg: float = 1e-6,
    ) -> None:
        if strength <= 0:
            raise ValueError(f"strength must be > 0, got {strength}")
        if max_clusters < 1 or min_samples_per_cluster < 1:
            raise ValueError("max_clusters and min_samples_per_cluster must be >= 1")
        self._store = _EpisodeStore(max_episodes)
        self.max_clusters = int(max_clusters)
        self.min_samples_per_cluster = int(min_samples_per_cluster)
        self.strength, self.iterations, self.reg = float(strength), int(iterations), float(reg)
        self.gmm: GMM | None = None

    def update(self, x: Array, u: Array) -> None:
        self._store.add(x, u, "GMMPrior")
        pts = self._store.points()
        K = max(1, min(self.max_clusters, len(pts) // self.min_samples_per_cluster))
        with single_threaded_blas():
            self.gmm = fit_gmm(pts, K, self.iterations, self.reg, init=self.gmm)

    def eval(self, pts: np.ndarray) -> NIW:
        if self.gmm is None:
            raise RuntimeError("GMMPrior.eval before update")
        w = np.exp(gmm_log_resp(self.gmm, pts)).mean(axis=-2)  # (T, K)
        mu0 = w @ self.gmm.means  # (T, D)
        d = self.gmm.means[None] - mu0[:, None]  # (T, K, D)
        cov = np.einsum("tk,kde->tde", w, self.gmm.covs) + np.einsum("tk,tkd,tke->tde", w, d, d)
        return NIW(mu0, self.strength * cov, self.strength, self.strength)


def make_prior(kind: str | DynamicsPrior | None, **kwargs: Any) -> DynamicsPrior | None:
    """``"gmm"``, ``"gaussian"``, ``None``/``"none"``, or an object with update/eval.

    ``kwargs`` go to the prior's constructor (:class:`GMMPrior` or :class:`GaussianPrior`).
    """
    if kind is None or kind == "none":
        return None
    if kind == "gmm":
        return GMMPrior(**kwargs)
    if kind == "gaussian":
        return GaussianPrior(**kwargs)
    if isinstance(kind, str):
        raise ValueError(f"unknown prior {kind!r}; accepted: 'gmm', 'gaussian', 'none' or None")
    return kind
