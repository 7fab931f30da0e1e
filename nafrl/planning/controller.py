"""The time-varying linear-Gaussian controller of iLQG (paper equations 4 and 6).

    pi_t(u_t | x_t) = N(u_hat_t + k_t + K_t (x_t - x_hat_t), cov_t),  cov_t = -c Q_{u,u t}^{-1}.

Both solvers return it (:func:`~nafrl.planning.ilqg.ilqg_solve`,
:func:`~nafrl.planning.kl_step.kl_constrained_step`); MPC and model-guided exploration act
with it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nafrl.models.base import Array


class LinearGaussianController(NamedTuple):
    """pi_t(u|x) = N(u_hat_t + k_t + K_t (x - x_hat_t), cov_t)  (equations 4 and 6).

    Attributes:
        K: (T, du, dx) feedback gains.
        k: (T, du) feed-forward term relative to u_hat.
        x_hat: (T+1, dx) nominal states the controller was computed around.
        u_hat: (T, du) nominal actions.
        cov: (T, du, du) action covariance -c Q_uu^{-1}.
    """

    K: Array
    k: Array
    x_hat: Array
    u_hat: Array
    cov: Array

    @property
    def horizon(self) -> int:
        return int(self.K.shape[0])

    def mean_action(self, x: Array, t: int) -> Array:
        """Mean action at time t for state x (dx,) (or a batch (B, dx))."""
        return self.u_hat[t] + self.k[t] + (x - self.x_hat[t]) @ self.K[t].T

    def sample(self, x: Array, t: int, key: jax.Array) -> jax.Array:
        """An action drawn from pi_t(.|x) for one state x (dx,) (jitted)."""
        return _sample_action(
            self, jnp.asarray(x, jnp.asarray(self.k).dtype), jnp.asarray(t, jnp.int32), key
        )

    def affine(self) -> tuple[jax.Array, jax.Array]:
        """(K, k_abs) with mean action K_t x + k_abs_t."""
        K = jnp.asarray(self.K)
        k_abs = jnp.asarray(self.u_hat) + self.k - jnp.einsum("tij,tj->ti", K, self.x_hat[:-1])
        return K, k_abs

    def recenter(self, x_hat: Array, u_hat: Array) -> LinearGaussianController:
        """The same policy written around a new nominal (x_hat (T+1, dx), u_hat (T, du))."""
        k = (
            self.u_hat
            + self.k
            + jnp.einsum("tij,tj->ti", self.K, x_hat[:-1] - self.x_hat[:-1])
            - u_hat
        )
        return self._replace(k=k, x_hat=x_hat, u_hat=u_hat)

    def as_dtype(self, dtype: jnp.dtype) -> LinearGaussianController:
        """The same controller with every array as a JAX array of ``dtype``."""
        return LinearGaussianController(*(jnp.asarray(a, dtype) for a in self))

    @classmethod
    def open_loop(
        cls, x_hat: Array, u_hat: Array, std: float | Array = 1.0
    ) -> LinearGaussianController:
        """K = 0, k = 0 around (x_hat (T+1, dx), u_hat (T, du)) with covariance std^2 I."""
        x_hat, u_hat = jnp.asarray(x_hat), jnp.asarray(u_hat)
        T, du = u_hat.shape
        std = jnp.broadcast_to(jnp.asarray(std, u_hat.dtype), (T, du))
        cov = jax.vmap(jnp.diag)(std**2)
        return cls(
            jnp.zeros((T, du, x_hat.shape[1]), u_hat.dtype),
            jnp.zeros_like(u_hat),
            x_hat,
            u_hat,
            cov,
        )

    @classmethod
    def from_samples(cls, x: Array, u: Array, min_std: float = 0.05) -> LinearGaussianController:
        """Open-loop Gaussian controller matching the per-step action mean and covariance of
        episodes x (E, T+1, dx), u (E, T, du) (eigenvalues floored at min_std^2); K = 0.

        Used as the "previous controller" of the first KL step when the data came from
        another policy, so the trust region keeps the new controller near the data.
        """
        x, u = np.asarray(x, np.float64), np.asarray(u, np.float64)
        mu = u.mean(0)
        d = u - mu
        cov = np.einsum("eti,etj->tij", d, d) / u.shape[0]
        w, V = np.linalg.eigh(cov)
        cov = (V * np.maximum(w, min_std**2)[:, None, :]) @ np.swapaxes(V, -1, -2)
        T, du = mu.shape
        return cls(
            jnp.zeros((T, du, x.shape[2])),
            jnp.zeros((T, du)),
            jnp.asarray(x.mean(0)),
            jnp.asarray(mu),
            jnp.asarray(cov),
        )


@jax.jit
def _sample_action(
    ctrl: LinearGaussianController, x: jax.Array, t: jax.Array, key: jax.Array
) -> jax.Array:
    mean = ctrl.u_hat[t] + ctrl.k[t] + ctrl.K[t] @ (x - ctrl.x_hat[t])
    cov = jnp.asarray(ctrl.cov[t])
    chol = jnp.linalg.cholesky(cov + 1e-12 * jnp.eye(cov.shape[0], dtype=cov.dtype))
    return mean + chol @ jax.random.normal(key, mean.shape, mean.dtype)
