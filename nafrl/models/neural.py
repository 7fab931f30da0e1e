"""A global neural-network dynamics model (the "-NN" baseline of paper section 6.3, Fig. 2b).

An MLP predicts the normalised state change,

    x_{t+1} = x_t + s_d * MLP((x_t - m_x) / s_x, (u_t - m_u) / s_u) + e,   e ~ N(0, diag(sigma^2)),

trained by Adam on the mean squared error over the transitions it is given -- all real
data so far for the paper's baseline ("fits a neural network to global dynamics"; use
:meth:`NeuralDynamics.add_and_fit` to accumulate). The normalisation statistics (m, s)
are recomputed at each fit; the network is warm-started from the previous fit. The noise
sigma is the per-dimension residual standard deviation on the training data. The model is
time-invariant (``t`` is ignored) and pure JAX, so the planner can linearise it by
autodiff and roll it out inside ``lax.scan``.

Training is one jitted ``lax.scan`` over minibatch steps; the dataset lives in a buffer
padded to a power-of-two capacity, so new data recompiles only when the capacity doubles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from nafrl.models.base import Array, DynamicsModel, LinearDynamics, check_episodes


class MLP(nn.Module):
    """ReLU MLP with a linear output."""

    hidden_sizes: Sequence[int]
    out_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for h in self.hidden_sizes:
            x = nn.relu(nn.Dense(h)(x))
        return nn.Dense(self.out_size, kernel_init=nn.initializers.zeros)(x)


class Normalizer(NamedTuple):
    """Input and output statistics: means and scales of x, u and of the change d = x' - x."""

    x_mean: jax.Array
    x_std: jax.Array
    u_mean: jax.Array
    u_std: jax.Array
    d_mean: jax.Array
    d_std: jax.Array


class NeuralParams(NamedTuple):
    """Pytree for the pure-JAX hooks: network variables, normaliser, residual std (dx,)."""

    net: Any
    norm: Normalizer
    noise_std: jax.Array


class NeuralDynamics(DynamicsModel):
    """Global MLP dynamics model trained on all real data.

    Args:
        hidden_sizes: MLP hidden widths (the paper's networks use 200 x 2).
        learning_rate: Adam step size.
        batch_size: minibatch size.
        train_steps: Adam steps per call to :meth:`fit`.
        weight_decay: decoupled weight decay (AdamW), 0 disables.
        max_transitions: keep at most this many (the most recent) transitions.
        seed: initialisation and minibatch sampling.
    """

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (200, 200),
        learning_rate: float = 1e-3,
        batch_size: int = 128,
        train_steps: int = 1000,
        weight_decay: float = 0.0,
        max_transitions: int = 1_000_000,
        seed: int = 0,
    ) -> None:
        if learning_rate <= 0 or batch_size < 1 or train_steps < 0 or max_transitions < 1:
            raise ValueError(
                "NeuralDynamics: learning_rate > 0, batch_size >= 1, train_steps >= 0 and "
                "max_transitions >= 1 are required"
            )
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.learning_rate, self.batch_size = float(learning_rate), int(batch_size)
        self.train_steps, self.weight_decay = int(train_steps), float(weight_decay)
        self.max_transitions = int(max_transitions)
        self._key = jax.random.PRNGKey(seed)
        self._X: np.ndarray | None = None  # (N, dx + du)
        self._Y: np.ndarray | None = None  # (N, dx) next states
        self._params: NeuralParams | None = None
        self._opt_state: Any = None
        self._optimizer = optax.adamw(self.learning_rate, weight_decay=self.weight_decay)
        self.losses: list[float] = []

    @property
    def n_transitions(self) -> int:
        return 0 if self._X is None else len(self._X)

    def fit(self, x: Array, u: Array) -> NeuralDynamics:
        """Train ``train_steps`` Adam steps on episodes x (E, T+1, dx), u (E, T, du).

        The dataset is exactly these episodes (the last ``max_transitions`` transitions):
        pass all real data so far for the paper's global model. The network is warm-started
        from the previous fit. Returns ``self``.
        """
        x, u = check_episodes(x, u, type(self).__name__)
        self.dx, self.du = x.shape[2], u.shape[2]
        X = np.concatenate([x[:, :-1], u], axis=-1).reshape(-1, self.dx + self.du)
        Y = x[:, 1:].reshape(-1, self.dx)
        self._X, self._Y = X[-self.max_transitions :], Y[-self.max_transitions :]
        self._train()
        return self

    def add(self, x: Array, u: Array) -> None:
        """Append episodes x (E, T+1, dx), u (E, T, du) to the dataset without training."""
        x, u = check_episodes(x, u, type(self).__name__)
        self.dx, self.du = x.shape[2], u.shape[2]
        X = np.concatenate([x[:, :-1], u], axis=-1).reshape(-1, self.dx + self.du)
        Y = x[:, 1:].reshape(-1, self.dx)
        if self._X is not None and self._Y is not None:
            X, Y = np.concatenate([self._X, X]), np.concatenate([self._Y, Y])
        self._X, self._Y = X[-self.max_transitions :], Y[-self.max_transitions :]

    def add_and_fit(self, x: Array, u: Array) -> NeuralDynamics:
        """Append episodes to the dataset, then train on all of it. Returns ``self``."""
        self.add(x, u)
        return self.train()

    def train(self) -> NeuralDynamics:
        """``train_steps`` more Adam steps on the current dataset. Returns ``self``."""
        if self._X is None:
            raise RuntimeError("NeuralDynamics.train: no data; call fit(x, u) or add(x, u)")
        self._train()
        return self

    def _normalizer(self) -> Normalizer:
        assert self._X is not None and self._Y is not None
        dx = self.dx
        xs, us = self._X[:, :dx], self._X[:, dx:]
        d = self._Y - xs

        def ms(a: np.ndarray) -> tuple[jax.Array, jax.Array]:
            return jnp.asarray(a.mean(0)), jnp.asarray(a.std(0) + 1e-6)

        return Normalizer(*ms(xs), *ms(us), *ms(d))

    def _train(self) -> None:
        assert self._X is not None and self._Y is not None
        norm = self._normalizer()
        if self._params is None:
            self._key, k = jax.random.split(self._key)
            net = MLP(self.hidden_sizes, self.dx).init(k, jnp.zeros(self.dx + self.du))
            self._opt_state = self._optimizer.init(net)
        else:
            net = self._params.net
        n = len(self._X)
        cap = max(4096, 1 << max(0, (n - 1).bit_length()))  # few distinct shapes to compile
        X = np.zeros((cap, self.dx + self.du), np.float32)
        Y = np.zeros((cap, self.dx), np.float32)
        X[:n], Y[:n] = self._X, self._Y
        self._key, k = jax.random.split(self._key)
        net, self._opt_state, losses = _train_steps(
            self._optimizer,
            self.train_steps,
            self.batch_size,
            net,
            self._opt_state,
            norm,
            jnp.asarray(X),
            jnp.asarray(Y),
            jnp.asarray(n),
            k,
        )
        if len(losses):
            self.losses.append(float(losses[-1]))
        # On all cap rows (one compiled shape per cap, not one per data size), then cut.
        pred = np.asarray(_predict_batch(net, norm, jnp.asarray(X)))[:n]
        noise = (pred - self._Y).std(0) if n > 1 else np.zeros(self.dx)
        self._params = NeuralParams(net, norm, jnp.asarray(noise + 1e-6))

    @property
    def params(self) -> NeuralParams:
        if self._params is None:
            raise RuntimeError("NeuralDynamics has no parameters yet; call fit(x, u)")
        return self._params

    @staticmethod
    def step_fn(
        params: NeuralParams, x: jax.Array, u: jax.Array, t: jax.Array, key: jax.Array | None
    ) -> jax.Array:
        mean = _predict(params.net, params.norm, x, u)
        if key is None:
            return mean
        return mean + params.noise_std.astype(x.dtype) * jax.random.normal(key, x.shape, x.dtype)

    @staticmethod
    def linearize_fn(
        params: NeuralParams, x_hat: jax.Array, u_hat: jax.Array, t0: jax.Array
    ) -> LinearDynamics:
        p = params
        dx = x_hat.shape[1]

        def f(z: jax.Array) -> jax.Array:
            return _predict(p.net, p.norm, z[:dx], z[dx:])

        z = jnp.concatenate([x_hat[:-1], u_hat], axis=1)
        F = jax.vmap(jax.jacfwd(f))(z)
        f0 = jax.vmap(f)(z) - jnp.einsum("tij,tj->ti", F, z)
        cov = jnp.broadcast_to(jnp.diag(p.noise_std.astype(x_hat.dtype) ** 2), (z.shape[0], dx, dx))
        return LinearDynamics(F, f0, cov)

    def one_step_error(self, x: Array, u: Array) -> float:
        """Root-mean-square one-step prediction error on episodes x (E, T+1, dx), u (E, T, du)."""
        x, u = check_episodes(x, u, type(self).__name__)
        pred = self.step(
            x[:, :-1].reshape(-1, self.dx).astype(np.float32),
            u.reshape(-1, self.du).astype(np.float32),
        )
        err = np.asarray(pred) - x[:, 1:].reshape(-1, self.dx)
        return float(np.sqrt((err**2).mean()))


def mlp_apply(net: Any, h: jax.Array) -> jax.Array:
    """Forward pass of :class:`MLP` from its variables alone (the layer sizes are the
    parameter shapes), so pure functions need no module object."""
    layers = net["params"]
    n = len(layers)
    for i in range(n):
        W, b = layers[f"Dense_{i}"]["kernel"], layers[f"Dense_{i}"]["bias"]
        h = h @ W.astype(h.dtype) + b.astype(h.dtype)
        if i < n - 1:
            h = jax.nn.relu(h)
    return h


def _predict(net: Any, norm: Normalizer, x: jax.Array, u: jax.Array) -> jax.Array:
    dt = x.dtype
    inp = jnp.concatenate(
        [
            (x - norm.x_mean.astype(dt)) / norm.x_std.astype(dt),
            (u - norm.u_mean.astype(dt)) / norm.u_std.astype(dt),
        ]
    )
    return x + norm.d_mean.astype(dt) + norm.d_std.astype(dt) * mlp_apply(net, inp)


@jax.jit
def _predict_batch(net: Any, norm: Normalizer, X: jax.Array) -> jax.Array:
    dx = norm.x_mean.shape[0]
    return jax.vmap(lambda z: _predict(net, norm, z[:dx], z[dx:]))(X)


@jax.jit(static_argnums=(0, 1, 2))
def _train_steps(
    optimizer: optax.GradientTransformation,
    steps: int,
    batch_size: int,
    net: Any,
    opt_state: Any,
    norm: Normalizer,
    X: jax.Array,
    Y: jax.Array,
    n: jax.Array,
    key: jax.Array,
) -> tuple[Any, Any, jax.Array]:
    """``steps`` Adam steps on the normalised-change MSE over the first n rows of (X, Y)."""
    dx = Y.shape[1]

    def loss_fn(p: Any, idx: jax.Array) -> jax.Array:
        xb, ub, yb = X[idx, :dx], X[idx, dx:], Y[idx]
        inp = jnp.concatenate([(xb - norm.x_mean) / norm.x_std, (ub - norm.u_mean) / norm.u_std], 1)
        target = (yb - xb - norm.d_mean) / norm.d_std
        return jnp.mean((mlp_apply(p, inp) - target) ** 2)

    def body(carry: tuple[Any, Any], k: jax.Array):
        p, s = carry
        idx = jax.random.randint(k, (batch_size,), 0, n)
        loss, g = jax.value_and_grad(loss_fn)(p, idx)
        upd, s = optimizer.update(g, s, p)
        return (optax.apply_updates(p, upd), s), loss

    (net, opt_state), losses = jax.lax.scan(body, (net, opt_state), jax.random.split(key, steps))
    return net, opt_state, losses
