"""Networks: MLPs, the NAF head (V, mu, L -> P) and the DDPG actor and critic (section 6).

The paper uses a separate two-layer, 200-unit ReLU MLP for each output (V, mu and L for
NAF). Separate MLPs on the same input are evaluated here as *one* stacked network whose
weights carry a leading "member" axis, so the three forward passes are batched matrix
products instead of three small ones (same maths, fewer, larger kernels on a CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import flax.linen as nn
import jax
import jax.numpy as jnp

_hidden_init = nn.initializers.variance_scaling(
    2.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1, batch_axis=(0,)
)


# Small output layer (as in DDPG, Lillicrap et al. 2016): initial Q and mu near zero.
def _output_init(key: jax.Array, shape: Sequence[int], dtype: jnp.dtype = jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -3e-3, 3e-3)


class StackedMLP(nn.Module):
    """Independent MLPs on the same input, one per entry of ``out_sizes``.

    The hidden layers of all members run together as batched matrix products (weights with
    a leading member axis); each member has its own output layer of its own size, so no
    work is padded. Returns a list of (B, out_sizes[k]) arrays, one per member, or just the
    ``members`` asked for (the NAF target needs V' alone; acting needs mu, and L only for
    NAF-P noise).
    """

    hidden_sizes: Sequence[int]
    out_sizes: Sequence[int]
    batch_norm: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(
        self, x: jax.Array, train: bool = False, members: Sequence[int] | None = None
    ) -> list[jax.Array]:
        num = len(self.out_sizes)
        sel = tuple(range(num)) if members is None else tuple(members)
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.99, name="bn_in")(x)
        # One observation (acting): separate matrix-vector products read only the chosen
        # members' weights and run about twice as fast as XLA's batched product at B = 1.
        unstacked = x.shape[0] == 1 and not self.batch_norm
        contiguous = sel == tuple(range(sel[0], sel[-1] + 1))
        idx = slice(sel[0], sel[-1] + 1) if contiguous else jnp.asarray(sel)
        h = x if unstacked else jnp.broadcast_to(x, (len(sel), *x.shape))
        hs = [x] * len(sel)
        din = x.shape[-1]
        for i, size in enumerate(self.hidden_sizes):
            W = self.param(f"W{i}", _hidden_init, (num, din, size))
            b = self.param(f"b{i}", nn.initializers.zeros, (num, 1, size))
            if self.layer_norm:
                g = self.param(f"ln_scale{i}", nn.initializers.ones, (num, 1, size))
                beta = self.param(f"ln_bias{i}", nn.initializers.zeros, (num, 1, size))
            if unstacked:
                pre = [hk @ W[k] + b[k] for hk, k in zip(hs, sel, strict=True)]
                if self.layer_norm:
                    pre = [_layer_norm(p, g[k], beta[k]) for p, k in zip(pre, sel, strict=True)]
                hs = [nn.relu(p) for p in pre]
            else:
                h = jnp.einsum("kbi,kio->kbo", h, W[idx]) + b[idx]
                if self.layer_norm:
                    h = _layer_norm(h, g[idx], beta[idx])
                if self.batch_norm:
                    # Statistics per (member, unit), over the batch axis only. Flax annotates
                    # ``axis`` as int; its implementation also takes a tuple of feature axes.
                    feature_axes = cast(int, (0, 2))
                    h = nn.BatchNorm(
                        use_running_average=not train,
                        momentum=0.99,
                        axis=feature_axes,
                        name=f"bn{i}",
                    )(h)
                h = nn.relu(h)
            din = size
        if not unstacked:
            hs = list(h)
        outs = []
        for j, size in enumerate(self.out_sizes):
            W = self.param(f"W_out{j}", _output_init, (din, size))
            b = self.param(f"b_out{j}", nn.initializers.zeros, (size,))
            if j in sel:
                outs.append(hs[sel.index(j)] @ W + b)
        return outs


def member_index(path: Sequence[Any], member: int) -> int | slice | None:
    """Where ``member`` lives in the :class:`StackedMLP` parameter at ``path`` (a pytree key
    path): ``member`` on the leading axis of a stacked hidden-layer (or layer/batch-norm)
    parameter, all of its own output head ``W_out{member}``/``b_out{member}``, and None for
    other members' heads and the input batch norm every member shares."""
    names = [str(getattr(k, "key", k)) for k in path]
    if "bn_in" in names:
        return None
    if names[-1].startswith(("W_out", "b_out")):
        return slice(None) if names[-1] in (f"W_out{member}", f"b_out{member}") else None
    return member


def _layer_norm(h: jax.Array, scale: jax.Array, bias: jax.Array, eps: float = 1e-5) -> jax.Array:
    """Normalise each row of ``h`` over its units (Ba et al. 2016), then scale and shift."""
    mean = jnp.mean(h, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(h - mean), axis=-1, keepdims=True)
    return (h - mean) * jax.lax.rsqrt(var + eps) * scale + bias


def num_tril(n: int) -> int:
    """Number of entries of an n x n lower-triangular matrix."""
    return n * (n + 1) // 2


def fill_lower_triangular(
    entries: jax.Array, n: int, max_log_diag: float, min_log_diag: float | None = None
) -> jax.Array:
    """(B, n(n+1)/2) linear outputs -> (B, n, n) lower-triangular L with exp'd diagonal (sec. 4).

    Only the diagonal is exponentiated (the paper's parametrisation), after a smooth bound
    log L_ii = max_log_diag * tanh(raw / max_log_diag), so P = L L^T is positive definite and
    finite. The bound is smooth, not a clip, because a clip has zero gradient outside its
    range: once an entry crossed it, P stayed pinned at e^(-2 max_log_diag) (mu then gets no
    gradient and never learns) or at e^(2 max_log_diag) (measured on InvertedDoublePendulum-v5,
    bench/results/reliability/README.md). Near zero the bound is the identity. With
    ``min_log_diag`` (< 0) the lower side is bounded there instead, by
    |min_log_diag| tanh(raw / |min_log_diag|), so P >= e^(2 min_log_diag); both sides have
    slope 1 at zero.
    """
    rows, cols = jnp.tril_indices(n)
    L = jnp.zeros((*entries.shape[:-1], n, n), entries.dtype).at[..., rows, cols].set(entries)
    raw = jnp.diagonal(L, axis1=-2, axis2=-1)
    if min_log_diag is None:
        bound: float | jax.Array = max_log_diag
    else:  # each side scaled by its own bound: one tanh, slope 1 at zero from both sides
        bound = jnp.where(raw >= 0, max_log_diag, -min_log_diag)
    diag = bound * jnp.tanh(raw / bound)
    eye = jnp.eye(n, dtype=bool)
    return jnp.where(eye, jnp.exp(diag)[..., None, :] * eye, L)


class NAFOutputs(NamedTuple):
    """V (B,), mu (B, du) in [-1, 1], L (B, du, du) lower-triangular with P = L L^T.

    L is None when the network was called with ``heads="mu"`` (acting without NAF-P noise).
    V2 is the second value head of a ``twin_v`` network (None otherwise).
    """

    V: jax.Array
    mu: jax.Array
    L: jax.Array | None
    V2: jax.Array | None = None

    def chol(self) -> jax.Array:
        """L, or a clear error for outputs computed without it (``heads="mu"``)."""
        if self.L is None:
            raise ValueError("NAFOutputs has no L: it was computed with heads='mu'; use 'all'")
        return self.L


class NAFNetwork(nn.Module):
    """The normalized advantage function network of section 4.

    Q(x, u) = V(x) + A(x, u),  A(x, u) = -1/2 (u - mu(x))^T P(x) (u - mu(x)),  P = L L^T.
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (200, 200)
    shared_trunk: bool = False
    batch_norm: bool = False
    max_log_diag: float = 5.0
    layer_norm: bool = False
    min_log_diag: float | None = None
    twin_v: bool = False

    @nn.compact
    def __call__(
        self, x: jax.Array, train: bool = False, value_only: bool = False, heads: str = "all"
    ) -> Any:
        """-> NAFOutputs; with ``value_only`` just V (B,), skipping the mu and L networks.

        ``heads`` ('all', 'policy' or 'mu') skips the networks acting does not need: with
        'policy' V is NaN, with 'mu' V is NaN and L is None. With ``twin_v`` there are two V
        networks: 'all' returns both (V, V2), ``value_only`` their minimum (the target's V')."""
        du, nl = self.action_dim, num_tril(self.action_dim)
        nv = 2 if self.twin_v else 1
        if self.shared_trunk:
            out = StackedMLP(self.hidden_sizes, (nv + du + nl,), self.batch_norm, self.layer_norm)(
                x, train
            )[0]
            vs, m, l_entries = out[:, :nv], out[:, nv : nv + du], out[:, nv + du :]
        elif self.batch_norm:  # running statistics are shared: always evaluate every member
            *v_list, m, l_entries = StackedMLP(
                self.hidden_sizes, (1,) * nv + (du, nl), True, self.layer_norm
            )(x, train)
            vs = jnp.concatenate(v_list, axis=-1)
        else:  # separate V, mu and L networks (the paper's default); V members first
            mlp = StackedMLP(self.hidden_sizes, (1,) * nv + (du, nl), False, self.layer_norm)
            if value_only:
                return jnp.min(jnp.concatenate(mlp(x, train, members=range(nv)), -1), -1)
            if heads == "mu":
                m = mlp(x, train, members=(nv,))[0]
                return NAFOutputs(jnp.full(x.shape[:1], jnp.nan, x.dtype), jnp.tanh(m), None)
            if heads == "policy":
                m, l_entries = mlp(x, train, members=(nv, nv + 1))
                vs = jnp.full((x.shape[0], 1), jnp.nan, x.dtype)
            else:
                *v_list, m, l_entries = mlp(x, train)
                vs = jnp.concatenate(v_list, axis=-1)
        if value_only:
            return jnp.min(vs, axis=-1)  # eq. (7) with clipped double V when twin_v
        v2 = vs[:, 1] if self.twin_v and heads == "all" else None
        mu = jnp.tanh(m)  # actions are normalised to [-1, 1]
        L = fill_lower_triangular(l_entries, du, self.max_log_diag, self.min_log_diag)
        return NAFOutputs(vs[:, 0], mu, L, v2)


def advantage(out: NAFOutputs, u: jax.Array) -> jax.Array:
    """A(x, u) = -1/2 ||L^T (u - mu)||^2 = -1/2 (u - mu)^T P (u - mu); shape (B,)."""
    z = jnp.einsum("bij,bi->bj", out.chol(), u - out.mu)
    return -0.5 * jnp.sum(z * z, axis=-1)


def q_value(out: NAFOutputs, u: jax.Array) -> jax.Array:
    """Q(x, u) = V(x) + A(x, u) (section 4); shape (B,)."""
    return out.V + advantage(out, u)


def precision(out: NAFOutputs) -> jax.Array:
    """P(x) = L(x) L(x)^T, shape (B, du, du)."""
    L = out.chol()
    return L @ jnp.swapaxes(L, -1, -2)


class Actor(nn.Module):
    """DDPG deterministic policy pi(x) in [-1, 1]^du."""

    action_dim: int
    hidden_sizes: Sequence[int] = (200, 200)
    batch_norm: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        mlp = StackedMLP(self.hidden_sizes, (self.action_dim,), self.batch_norm, self.layer_norm)
        return jnp.tanh(mlp(x, train)[0])


class Critic(nn.Module):
    """DDPG action-value Q(x, u); the action joins the state at the input layer.

    With ``batch_norm`` only the state is normalised (at the input): as in Lillicrap et al.,
    no batch norm sees the action. Batch statistics over the action would make Q(x, u) of
    one row depend on the other rows' actions, and the actor's loss, Q(x, pi(x)) with the
    statistics of pi's actions, a different function from the critic trained on the
    buffer's actions; that made DDPG's Q diverge on the peg (bench/results/paper/README.md).
    """

    hidden_sizes: Sequence[int] = (200, 200)
    batch_norm: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, u: jax.Array, train: bool = False) -> jax.Array:
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.99, name="bn_state")(x)
        xu = jnp.concatenate([x, u], axis=-1)
        mlp = StackedMLP(self.hidden_sizes, (1,), False, self.layer_norm)
        return mlp(xu, train)[0][:, 0]
