"""Exploration noise: Gaussian, Ornstein-Uhlenbeck, and NAF-P (appendix 8.2).

All three are pure functions of an explicit noise state and random key, and all share one
meaning of ``scale``: the stationary standard deviation of the noise added to each
normalised action dimension. So switching between them does not change the noise level.

- ``gaussian``: n_t = scale * eps_t, independent across steps.
- ``ou``: exact discretisation of dn = -theta n dt + sigma dW with dt = 1 step:
  n_{t+1} = a n_t + sqrt(1 - a^2) * scale * eps_t,  a = exp(-theta).
  Its stationary variance is sigma^2 / (2 theta) = scale^2 with sigma = scale sqrt(2 theta).
- ``precision`` (NAF-P): the OU innovations are drawn from N(0, c P(x)^-1) (eq. 7) instead of
  N(0, scale^2 I). Sampling uses the Cholesky factor, never an inverse: P = L L^T, so
  z = L^-T eps solves L^T z = eps and has covariance P^-1. The adaptive scale c (the paper's
  "heuristic adaptive-scaling trick") is c = scale^2 / mean(diag(P^-1)): the noise keeps the
  shape of P^-1 (more noise where the advantage is flat) but its average variance stays
  scale^2, so it does not drift with the reward scale as learning proceeds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular


def precision_scale(L: jax.Array, scale: float) -> jax.Array:
    """Adaptive c such that mean(diag(c P^-1)) = scale^2; L has shape (..., du, du)."""
    du = L.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(du, dtype=L.dtype), L.shape)
    L_inv = solve_triangular(L, eye, lower=True)  # diag(P^-1) = column norms^2 of L^-1
    mean_var = jnp.sum(L_inv**2, axis=(-2, -1)) / du
    return scale**2 / mean_var


def precision_noise(key: jax.Array, L: jax.Array, scale: float) -> jax.Array:
    """One draw from N(0, c P^-1) with P = L L^T and the adaptive c; L (du, du) -> (du,)."""
    eps = jax.random.normal(key, L.shape[-1:], L.dtype)
    z = solve_triangular(L, eps, lower=True, trans="T")  # L^T z = eps  =>  Cov z = P^-1
    return jnp.sqrt(precision_scale(L, scale)) * z


def sample_noise(
    kind: str,
    noise: jax.Array,
    key: jax.Array,
    scale: float,
    theta: float,
    L: jax.Array | None = None,
) -> jax.Array:
    """Advance the noise process one step and return the new noise (= the new state), (du,).

    ``kind`` is 'gaussian', 'ou' or 'precision'; ``L`` (du, du) is required for 'precision'.
    """
    if kind == "gaussian":
        return scale * jax.random.normal(key, noise.shape, noise.dtype)
    a = jnp.exp(-theta)
    if kind == "ou":
        innovation = scale * jax.random.normal(key, noise.shape, noise.dtype)
    elif kind == "precision":
        assert L is not None, "precision noise needs L"
        innovation = precision_noise(key, L, scale)
    else:
        raise ValueError(f"unknown exploration kind {kind!r}; accepted: ou, gaussian, precision")
    return a * noise + jnp.sqrt(1.0 - a**2) * innovation
