"""Iteratively refitted time-varying linear-Gaussian dynamics (paper section 5.3).

Every n episodes (n = 5 in the paper) fit, per time step t, a Gaussian over the vectors
[x_t; u_t; x_{t+1}] of the n episodes and condition it on [x_t; u_t]:

    p_t(x_{t+1} | x_t, u_t) = N(F_t [x_t; u_t] + f_t, N_t),
    F_t = Sigma_{x',xu} Sigma_{xu,xu}^{-1},  f_t = mu_{x'} - F_t mu_{xu},
    N_t = Sigma_{x',x'} - F_t Sigma_{xu,xu} F_t^T.

Without a prior and without ridge this is exactly ordinary least squares of x_{t+1} on
[x_t; u_t; 1] with N_t the (maximum-likelihood) residual covariance. With n = 5 in tens of
dimensions Sigma_{xu,xu} is singular: a ridge ``reg`` is added to it and, by default, a
Gaussian-mixture prior fitted on all recent points (:mod:`nafrl.models.priors`) supplies the
missing directions.

The model assumes the initial state is deterministic or a low-variance Gaussian (section
5.3). The paper's remedy for more varied initial states, a mixture of Gaussian initial
states with one model each, is mentioned there but used in none of its experiments, and is
not implemented here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nafrl.models.base import Array, DynamicsModel, LinearDynamics, check_episodes
from nafrl.models.priors import (
    DynamicsPrior,
    make_prior,
    niw_posterior,
    pooled_points,
    single_threaded_blas,
)


def condition_gaussian(
    mu: np.ndarray, sigma: np.ndarray, d_in: int, reg: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Condition N(mu, sigma) over [a; b] on its first ``d_in`` entries a.

    Args:
        mu: (..., D) joint mean; sigma: (..., D, D) joint covariance.
        d_in: size of the conditioning block a.
        reg: ridge added to Sigma_aa before solving.

    Returns:
        F (..., D-d_in, d_in), f (..., D-d_in), cov (..., D-d_in, D-d_in) with
        p(b | a) = N(F a + f, cov).
    """
    S_aa = sigma[..., :d_in, :d_in] + reg * np.eye(d_in)
    S_ab = sigma[..., :d_in, d_in:]
    S_bb = sigma[..., d_in:, d_in:]
    F = np.swapaxes(np.linalg.solve(S_aa, S_ab), -1, -2)
    f = mu[..., d_in:] - np.einsum("...ij,...j->...i", F, mu[..., :d_in])
    cov = S_bb - F @ S_aa @ np.swapaxes(F, -1, -2)
    return F, f, 0.5 * (cov + np.swapaxes(cov, -1, -2))


def project_psd(cov: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Clip the eigenvalues of symmetric matrices (..., d, d) to at least ``floor``."""
    w, V = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, -1, -2)))
    return (V * np.maximum(w, floor)[..., None, :]) @ np.swapaxes(V, -1, -2)


def empirical_moments(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (..., D) and maximum-likelihood covariance (..., D, D) over axis -2 of z (..., N, D)."""
    mu = z.mean(-2)
    d = z - mu[..., None, :]
    return mu, np.einsum("...nd,...ne->...de", d, d) / z.shape[-2]


class LGParams(NamedTuple):
    """Pytree of a fitted model for the pure-JAX hooks: F, f, cov as in LinearDynamics,
    plus chol (T, dx, dx), the Cholesky factor of the noise used for sampling."""

    F: jax.Array
    f: jax.Array
    cov: jax.Array
    chol: jax.Array


class LinearGaussianDynamics(DynamicsModel):
    """Time-varying linear-Gaussian model p_t(x'|x,u) = N(F_t [x; u] + f_t, N_t) (section 5.3).

    Args:
        prior: ``"gmm"`` (default; Levine & Abbeel 2014), ``"gaussian"``, ``None``, or an
            object with ``update(x, u)`` / ``eval(pts)`` (see :mod:`nafrl.models.priors`).
            The prior is updated with every batch passed to :meth:`fit` and keeps the last
            ``prior_kwargs["max_episodes"]`` (default 20) episodes.
        reg: ridge added to the diagonal of Sigma_{xu,xu} before conditioning.
        noise_floor: lower bound on the eigenvalues of each N_t (keeps sampling and the
            KL computations of iLQG well defined for near-deterministic simulators).
        prior_kwargs: passed to the prior's constructor when ``prior`` is a string.

    After :meth:`fit` (or :meth:`from_params`) the model exposes ``F`` (T, dx, dx+du),
    ``f`` (T, dx) and ``cov`` (T, dx, dx) as float64 arrays, ``x0_mean`` (dx,) and
    ``x0_cov`` (dx, dx) of the initial states, and ``x_mean`` (T+1, dx), the mean state
    per step. ``step`` beyond the last fitted step reuses the last F_t, f_t, N_t.
    """

    def __init__(
        self,
        prior: str | DynamicsPrior | None = "gmm",
        reg: float = 1e-6,
        noise_floor: float = 1e-8,
        prior_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if reg < 0 or noise_floor < 0:
            raise ValueError(f"reg and noise_floor must be >= 0, got {reg}, {noise_floor}")
        self.prior = make_prior(prior, **(prior_kwargs or {}))
        self.reg, self.noise_floor = float(reg), float(noise_floor)
        self._F: np.ndarray | None = None
        self._f: np.ndarray | None = None
        self._cov: np.ndarray | None = None
        self._params: LGParams | None = None
        self._x0: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.n_fits = 0

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_params(
        cls, F: Array, f: Array, cov: Array | None = None, **kwargs: Any
    ) -> LinearGaussianDynamics:
        """A model with given F (T, dx, dx+du), f (T, dx), cov (T, dx, dx) (zero if None)."""
        F = np.asarray(F, np.float64)
        f = np.asarray(f, np.float64)
        if F.ndim != 3 or f.shape != F.shape[:2] or F.shape[2] <= F.shape[1]:
            raise ValueError(
                f"from_params: expected F (T, dx, dx+du) with du >= 1 and f (T, dx); "
                f"got F {F.shape}, f {f.shape}"
            )
        cov = np.zeros(F.shape[:2] + F.shape[1:2]) if cov is None else np.asarray(cov, np.float64)
        if cov.shape != F.shape[:2] + F.shape[1:2]:
            raise ValueError(
                f"from_params: cov must be {F.shape[:2] + F.shape[1:2]}, got {cov.shape}"
            )
        kwargs.setdefault("prior", None)
        model = cls(**kwargs)
        model._set(F, f, project_psd(cov, 0.0))
        return model

    def _set(self, F: np.ndarray, f: np.ndarray, cov: np.ndarray) -> None:
        self._F, self._f, self._cov = F, f, cov
        self.dx, self.du = F.shape[1], F.shape[2] - F.shape[1]
        jitter = 1e-12 * np.eye(self.dx)
        chol = np.linalg.cholesky(cov + jitter + self.noise_floor * np.eye(self.dx))
        self._params = LGParams(*(jnp.asarray(a) for a in (F, f, cov, chol)))

    # -- fitting ------------------------------------------------------------------------
    def fit(self, x: Array, u: Array) -> LinearGaussianDynamics:
        """Refit on episodes x (E, T+1, dx), u (E, T, du); updates the prior first."""
        x, u = check_episodes(x, u, type(self).__name__)
        if self.prior is not None:
            self.prior.update(x, u)
        self._fit_batch(x, u)
        return self

    def _fit_batch(self, x: np.ndarray, u: np.ndarray) -> None:
        with single_threaded_blas():
            self._fit_batch_impl(x, u)

    def _fit_batch_impl(self, x: np.ndarray, u: np.ndarray) -> None:
        E, T1, dx = x.shape
        du = u.shape[2]
        pts = pooled_points(x, u)  # (T, E, D)
        mu, S = empirical_moments(pts)
        sigma = S if self.prior is None else niw_posterior(mu, S, E, self.prior.eval(pts))
        F, f, cov = condition_gaussian(mu, sigma, dx + du, self.reg)
        cov = project_psd(cov, self.noise_floor)
        self._set(F, f, cov)
        x0_mean, x0_cov = empirical_moments(x[:, 0])
        self._x0 = (x0_mean, x0_cov + self.reg * np.eye(dx), x.mean(0))
        self.n_fits += 1

    # -- parameters ---------------------------------------------------------------------
    def _require(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._F is None or self._f is None or self._cov is None:
            raise RuntimeError(
                "LinearGaussianDynamics has no parameters yet; call fit(x, u) or from_params"
            )
        return self._F, self._f, self._cov

    @property
    def fitted(self) -> bool:
        return self._F is not None

    @property
    def F(self) -> np.ndarray:
        """(T, dx, dx+du) float64."""
        return self._require()[0]

    @property
    def f(self) -> np.ndarray:
        """(T, dx) float64."""
        return self._require()[1]

    @property
    def cov(self) -> np.ndarray:
        """(T, dx, dx) float64 noise covariances N_t."""
        return self._require()[2]

    @property
    def horizon(self) -> int:
        return int(self.F.shape[0])

    def _require_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._x0 is None:
            raise RuntimeError(
                "LinearGaussianDynamics has no state statistics: they come from fit(x, u) "
                "(a model made by from_params has none)"
            )
        return self._x0

    @property
    def x0_mean(self) -> np.ndarray:
        """(dx,) mean of the initial states of the last fit."""
        return self._require_data()[0]

    @property
    def x0_cov(self) -> np.ndarray:
        """(dx, dx) covariance of those initial states (plus the ridge ``reg``)."""
        return self._require_data()[1]

    @property
    def x_mean(self) -> np.ndarray:
        """(T+1, dx) mean state per time step of the last fit."""
        return self._require_data()[2]

    @property
    def linear(self) -> LinearDynamics:
        """The fitted parameters as a :class:`LinearDynamics` (float64 NumPy)."""
        return LinearDynamics(*self._require())

    @property
    def params(self) -> LGParams:
        self._require()
        assert self._params is not None
        return self._params

    # -- pure-JAX hooks -----------------------------------------------------------------
    @staticmethod
    def step_fn(
        params: LGParams, x: jax.Array, u: jax.Array, t: jax.Array, key: jax.Array | None
    ) -> jax.Array:
        tc = jnp.clip(t, 0, params.F.shape[0] - 1)
        mean = params.F[tc].astype(x.dtype) @ jnp.concatenate([x, u]) + params.f[tc].astype(x.dtype)
        if key is None:
            return mean
        eps = jax.random.normal(key, x.shape, x.dtype)
        return mean + params.chol[tc].astype(x.dtype) @ eps

    @staticmethod
    def linearize_fn(
        params: LGParams, x_hat: jax.Array, u_hat: jax.Array, t0: jax.Array
    ) -> LinearDynamics:
        idx = jnp.clip(t0 + jnp.arange(u_hat.shape[0]), 0, params.F.shape[0] - 1)
        dt = x_hat.dtype
        return LinearDynamics(
            params.F[idx].astype(dt), params.f[idx].astype(dt), params.cov[idx].astype(dt)
        )
