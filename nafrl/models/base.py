"""The interface shared by nafrl's dynamics models (paper section 5).

Every model predicts the next state x_{t+1} from (x_t, u_t, t) and is fitted from whole
episodes. The planner (:mod:`nafrl.planning`) and the imagination rollouts take any model
through this interface:

``fit(x, u) -> self``
    states ``x`` of shape (episodes, T+1, dx) and actions ``u`` of shape (episodes, T, du).
``step(x, u, t=0, key=None) -> x_next``
    a batch: ``x`` (B, dx), ``u`` (B, du), ``t`` an int or (B,) ints; with ``key`` the
    model's noise is sampled, without it the mean is returned.
``linearize(x_hat, u_hat, t0=0) -> LinearDynamics``
    the local model x_{t+1} ~ N(F_t [x_t; u_t] + f_t, N_t) along a nominal trajectory
    (x_hat (H+1, dx), u_hat (H, du)) that starts at time index ``t0``.

Models whose ``step`` is a pure JAX function (``jittable = True``) also expose their
parameters as a pytree (``params``) and the pure functions ``step_fn(params, x, u, t, key)``
on single (unbatched) vectors and ``linearize_fn(params, x_hat, u_hat, t0)``, so the planner
can ``jit``/``scan``/``vmap`` through them. The true simulator (``jittable = False``) runs in
Python and plans in its own state coordinates z, with rewards on observations h(z): it
satisfies :class:`ObservedDynamics`; see :mod:`nafrl.models.simulator`.

Models know nothing of controllers or planners: :mod:`nafrl.planning` builds on this
interface, never the other way round.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array | np.ndarray
StepFn = Callable[[Any, jax.Array, jax.Array, jax.Array, jax.Array | None], jax.Array]


class LinearDynamics(NamedTuple):
    """Time-varying linear-Gaussian dynamics p_t(x_{t+1}|x_t,u_t) = N(F_t [x_t; u_t] + f_t, N_t).

    The form of section 5.3 and of iLQG's local model (section 3, appendix 8.1).

    Attributes:
        F: (T, dx, dx+du) the matrix [f_x f_u] acting on the stacked vector [x_t; u_t].
        f: (T, dx) the offset.
        cov: (T, dx, dx) the noise covariance N_t (positive semi-definite).
    """

    F: Array
    f: Array
    cov: Array

    @property
    def horizon(self) -> int:
        """T, the number of transitions."""
        return int(self.F.shape[0])

    @property
    def dx(self) -> int:
        return int(self.F.shape[1])

    @property
    def du(self) -> int:
        return int(self.F.shape[2] - self.F.shape[1])


def check_episodes(x: Array, u: Array, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate episode arrays for ``fit``: x (E, T+1, dx), u (E, T, du); return float64 copies."""
    x = np.asarray(x, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    if x.ndim != 3 or u.ndim != 3:
        raise ValueError(
            f"{who}.fit: expected states of shape (episodes, T+1, dx) and actions of shape "
            f"(episodes, T, du); got {x.shape} and {u.shape}"
        )
    if x.shape[0] != u.shape[0] or x.shape[1] != u.shape[1] + 1:
        raise ValueError(
            f"{who}.fit: states {x.shape} and actions {u.shape} do not match; states need one "
            f"more time step than actions (x_0 ... x_T for u_0 ... u_T-1) and the same episodes"
        )
    if x.shape[0] < 1 or u.shape[1] < 1:
        raise ValueError(f"{who}.fit: need at least one episode of at least one step")
    if not (np.isfinite(x).all() and np.isfinite(u).all()):
        raise ValueError(f"{who}.fit: states or actions contain NaN or inf")
    return x, u


@runtime_checkable
class ObservedDynamics(Protocol):
    """A model that plans in its own state coordinates z while rewards are functions of the
    observation o = h(z) (the true simulator, section 6.2).

    The planner rolls such a model out in Python through ``step_observed`` and linearises it
    through ``linearize_with_observation``, chaining the reward's expansion in (o, u)
    through the observation's derivatives.
    """

    dx: int
    """dz, the size of the planning state."""
    du: int
    do: int
    """The size of an observation."""

    def observe(self, z: Array) -> np.ndarray:
        """Observations h(z) (..., do) of states z (..., dz)."""
        ...

    def step_observed(self, z: Array, u: Array) -> tuple[np.ndarray, np.ndarray]:
        """Next states (B, dz) and their observations (B, do) for z (B, dz), u (B, du)."""
        ...

    def linearize_with_observation(
        self, x_hat: Array, u_hat: Array, t0: int = 0
    ) -> tuple[LinearDynamics, np.ndarray, np.ndarray, np.ndarray]:
        """(dynamics along the nominal, obs (H+1, do), J = dh/dz (H+1, do, dz),
        d^2 h / dz_i^2 (H+1, do, dz))."""
        ...


class DynamicsModel(abc.ABC):
    """Abstract dynamics model; see the module docstring for the contract."""

    jittable: ClassVar[bool] = True
    """True if ``step_fn``/``linearize_fn`` are pure JAX functions of ``params``."""

    dx: int
    du: int

    @abc.abstractmethod
    def fit(self, x: Array, u: Array) -> DynamicsModel:
        """Fit from episodes: x (E, T+1, dx), u (E, T, du). Returns ``self``."""

    # -- pure-JAX hooks (jittable models) -------------------------------------------------
    @property
    def params(self) -> Any:
        """Parameters pytree passed to ``step_fn`` and ``linearize_fn``."""
        raise NotImplementedError(f"{type(self).__name__} is not a pure-JAX model")

    @staticmethod
    def step_fn(
        params: Any, x: jax.Array, u: jax.Array, t: jax.Array, key: jax.Array | None
    ) -> jax.Array:
        """x_{t+1} for one state (dx,), action (du,) and integer time ``t``; pure JAX."""
        raise NotImplementedError

    @staticmethod
    def linearize_fn(
        params: Any, x_hat: jax.Array, u_hat: jax.Array, t0: jax.Array
    ) -> LinearDynamics:
        """Local model along (x_hat (H+1, dx), u_hat (H, du)) from time ``t0``; pure JAX."""
        raise NotImplementedError

    # -- batched conveniences -----------------------------------------------------------
    def step(self, x: Array, u: Array, t: int | Array = 0, key: jax.Array | None = None) -> Array:
        """Next states for a batch: x (B, dx), u (B, du), t int or (B,). Mean without ``key``."""
        x = jnp.asarray(x)
        u = jnp.asarray(u, dtype=x.dtype)
        t = jnp.broadcast_to(jnp.asarray(t, dtype=jnp.int32), x.shape[:1])
        return _batched_step(type(self).step_fn, self.params, x, u, t, key)

    def linearize(self, x_hat: Array, u_hat: Array, t0: int = 0) -> LinearDynamics:
        """Local linear-Gaussian model along x_hat (H+1, dx), u_hat (H, du) from time ``t0``."""
        x_hat = jnp.asarray(x_hat)
        return _linearize(
            type(self).linearize_fn,
            self.params,
            x_hat,
            jnp.asarray(u_hat, x_hat.dtype),
            jnp.asarray(t0, jnp.int32),
        )

    def rollout(self, x0: Array, u: Array, t0: int = 0, key: jax.Array | None = None) -> Array:
        """Open-loop rollout of actions u (H, du) from x0 (dx,): states (H+1, dx)."""
        x0 = jnp.asarray(x0)
        return _rollout(
            type(self).step_fn,
            self.params,
            x0,
            jnp.asarray(u, x0.dtype),
            jnp.asarray(t0, jnp.int32),
            key,
        )

    def state_from(self, obs: Array, env_state: Array | None = None) -> Array:
        """The model's state for an observation (identity for models of observations)."""
        del env_state
        return np.asarray(obs)


@jax.jit(static_argnums=0)
def _batched_step(
    step_fn: StepFn,
    params: Any,
    x: jax.Array,
    u: jax.Array,
    t: jax.Array,
    key: jax.Array | None,
) -> jax.Array:
    if key is None:
        return jax.vmap(lambda xi, ui, ti: step_fn(params, xi, ui, ti, None))(x, u, t)
    keys = jax.random.split(key, x.shape[0])
    return jax.vmap(lambda xi, ui, ti, ki: step_fn(params, xi, ui, ti, ki))(x, u, t, keys)


@jax.jit(static_argnums=0)
def _linearize(
    linearize_fn: Callable[..., LinearDynamics],
    params: Any,
    x_hat: jax.Array,
    u_hat: jax.Array,
    t0: jax.Array,
) -> LinearDynamics:
    return linearize_fn(params, x_hat, u_hat, t0)


@jax.jit(static_argnums=0)
def _rollout(
    step_fn: StepFn,
    params: Any,
    x0: jax.Array,
    u: jax.Array,
    t0: jax.Array,
    key: jax.Array | None,
) -> jax.Array:
    H = u.shape[0]
    keys = None if key is None else jax.random.split(key, H)

    def body(x: jax.Array, inp: tuple[Any, ...]) -> tuple[jax.Array, jax.Array]:
        i, ui, ki = inp
        xn = step_fn(params, x, ui, t0 + i, ki)
        return xn, xn

    idx = jnp.arange(H)
    _, xs = jax.lax.scan(body, x0, (idx, u, keys) if keys is not None else (idx, u, None))
    return jnp.concatenate([x0[None], xs], axis=0)
