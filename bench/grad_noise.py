"""Gradient noise of NAF's mu head against DDPG's actor (issue 13, the mu-gradient hypothesis).

NAF's policy mu learns only through the Q fit: with A = -1/2 (u - mu)^T P (u - mu) the loss's
gradient on mu is -2 TD P (u - mu), built from the exploration noise (u - mu) and a noisy TD
error, where DDPG's actor follows the critic's analytic dQ/du. This script measures how noisy
each policy gradient is while the agents learn with their defaults on the same task and seed.

At every ``--every``-th training episode it draws ``--minibatches`` independent minibatches
(the agent's batch size) from the agent's replay buffer with its own generator (training is
not disturbed), takes each minibatch's gradient of the agent's own loss with respect to one
parameter group, and reports the *simple noise scale* of McCandlish et al. (2018), "An
Empirical Model of Large-Batch Training": B = tr(Sigma) / |G|^2, the number of samples a
minibatch needs before its gradient's noise is no larger than its signal. G is estimated
unbiasedly from the K minibatch gradients g_k of m samples each:
|G|^2 = |mean g|^2 - S / K and tr(Sigma) = m S, with S = sum_k |g_k - mean g|^2 / (K - 1).
Groups: NAF's mu, V and L heads (each has its own network by default), DDPG's actor and
critic. A B far above the batch size (64) means each update's step is mostly noise; Adam
normalises the step's size per parameter, not its direction.

    python bench/grad_noise.py --env HalfCheetah-v5 --steps 30000 --seed 0 \
        --out bench/results/reliability/grad-noise/HalfCheetah-v5

Writes ``<out>/noise.csv`` (algo, group, episode, total_steps, noise_scale, grad_norm, cos:
the mean cosine between minibatch gradients and the mean of the others) and
``<out>/noise.png``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nafrl.agents import ddpg as ddpg_agent
from nafrl.agents import naf as naf_agent
from nafrl.agents.common import widen_reward_range
from nafrl.agents.obs_norm import normalize
from nafrl.api import OffPolicyAgent, agent_class
from nafrl.logger import write_rows_atomic
from nafrl.networks import member_index
from nafrl.types import Batch

#: NAF's stacked heads, in StackedMLP's order (the member index).
NAF_HEADS = {"V": 0, "mu": 1, "L": 2}


def _flat(tree: Any) -> jax.Array:
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


def naf_head(grads: dict[str, Any], head: str) -> jax.Array:
    """The flat gradient of one NAF head out of the stacked network's gradient."""
    i = NAF_HEADS[head]
    leaves = jax.tree_util.tree_leaves_with_path(grads["StackedMLP_0"])
    return _flat([g[idx] for path, g in leaves if (idx := member_index(path, i)) is not None])


def noise_scale(g: np.ndarray, m: int) -> tuple[float, float, float]:
    """(B_simple in samples, |G| estimate, mean leave-one-out cosine) from K x dim gradients."""
    K = g.shape[0]
    mean = g.mean(axis=0)
    S = float(np.sum((g - mean) ** 2) / (K - 1))
    G2 = float(np.sum(mean**2)) - S / K
    others = (g.sum(axis=0)[None] - g) / (K - 1)
    cos = np.sum(g * others, axis=1) / (
        np.linalg.norm(g, axis=1) * np.linalg.norm(others, axis=1) + 1e-30
    )
    B = m * S / G2 if G2 > 0 else math.inf
    return B, math.sqrt(max(G2, 0.0)), float(np.mean(cos))


def gradient_fn(model: OffPolicyAgent) -> Any:
    """Jitted (state, Batch with a leading K axis) -> {group: K x dim gradients}."""
    config = model.config
    if model.algo == "naf":
        net = naf_agent.make_network(config, model.act_dim)

        def one(state: Any, b: Batch) -> dict[str, jax.Array]:
            def loss(p: Any) -> jax.Array:
                return naf_agent.td_loss(
                    net,
                    {**state.params, "params": p},
                    state.target_params,
                    b,
                    config.gamma,
                    state.reward_range,
                    config.target_smoothing,
                )[0]

            grads = jax.grad(loss)(state.params["params"])
            return {h: naf_head(grads, h) for h in NAF_HEADS}

    else:
        actor, critic = ddpg_agent.make_networks(config, model.act_dim)

        def one(state: Any, b: Batch) -> dict[str, jax.Array]:
            # The same losses as ddpg.update, before its critic step.
            reward_range = widen_reward_range(state.reward_range, b.reward)
            y = ddpg_agent.critic_target(actor, critic, state, b, config.gamma, reward_range)
            g_critic = jax.grad(lambda p: ddpg_agent.critic_loss(critic, p, state.params, b, y)[0])
            g_actor = jax.grad(
                lambda p: ddpg_agent.actor_loss(
                    actor, critic, p, state.actor_params, state.params, b.obs
                )[0]
            )
            return {
                "actor": _flat(g_actor(state.actor_params["params"])),
                "critic": _flat(g_critic(state.params["params"])),
            }

    def all_batches(state: Any, batches: Batch) -> dict[str, jax.Array]:
        if config.obs_norm:
            stats = state.obs_stats
            batches = batches._replace(
                obs=normalize(stats, batches.obs), next_obs=normalize(stats, batches.next_obs)
            )
        return jax.vmap(lambda b: one(state, b))(batches)

    return jax.jit(all_batches)


def measure(algo: str, env: str, seed: int, steps: int, every: int, K: int) -> list[dict[str, Any]]:
    """Train ``algo`` with its defaults; every ``every`` episodes, measure its gradient noise."""
    cls = agent_class(algo)
    model = cls(env, seed=seed, checkpoint_interval=0)
    grads_of = gradient_fn(model)
    rng = np.random.default_rng([seed, 7])  # its own generator: training is not disturbed
    m = model.config.batch_size
    rows: list[dict[str, Any]] = []

    def callback(model: Any) -> None:
        if model.num_episodes % every or len(model.buffer) < model.config.learning_starts:
            return
        batches = model.buffer.sample(rng, m, K)
        batches = jax.tree.map(jnp.asarray, batches)
        for group, g in grads_of(model.state, batches).items():
            B, G, cos = noise_scale(np.asarray(g, np.float64), m)
            rows.append(
                {
                    "algo": algo,
                    "group": group,
                    "episode": model.num_episodes,
                    "total_steps": model.num_timesteps,
                    "noise_scale": B,
                    "grad_norm": G,
                    "cos": cos,
                    "return": model.episode_log[-1]["return"],
                }
            )
            print(f"{algo} ep {model.num_episodes:4d} {group:6s} B {B:10.0f} cos {cos:+.3f}")

    model.learn(steps, callback=callback)
    return rows


def plot(rows: list[dict[str, Any]], path: Path, batch_size: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key in sorted({(r["algo"], r["group"]) for r in rows}):
        pts = [(r["total_steps"], r["noise_scale"]) for r in rows if (r["algo"], r["group"]) == key]
        x, y = zip(*pts, strict=True)
        ax.plot(x, [v if math.isfinite(v) else np.nan for v in y], marker=".", label="/".join(key))
    ax.axhline(batch_size, color="k", lw=0.8, ls="--", label=f"batch {batch_size}")
    ax.set_yscale("log")
    ax.set_xlabel("env steps")
    ax.set_ylabel("simple noise scale B (samples)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--env", default="HalfCheetah-v5")
    ap.add_argument("--algos", nargs="+", default=["naf", "ddpg"], choices=["naf", "ddpg"])
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=5, help="episodes between measurements")
    ap.add_argument("--minibatches", type=int, default=64, help="K independent minibatches")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for algo in a.algos:
        rows += measure(algo, a.env, a.seed, a.steps, a.every, a.minibatches)
    a.out.mkdir(parents=True, exist_ok=True)
    write_rows_atomic(a.out / "noise.csv", rows)
    plot(rows, a.out / "noise.png", 64)
    for key in sorted({(r["algo"], r["group"]) for r in rows}):
        sel = [r for r in rows if (r["algo"], r["group"]) == key]
        late = [r for r in sel if r["total_steps"] > sel[-1]["total_steps"] / 2]
        med = float(np.median([r["noise_scale"] for r in late]))
        cos = float(np.median([r["cos"] for r in late]))
        print(f"{'/'.join(key):12s} second half: median B {med:10.0f}  median cos {cos:+.3f}")


if __name__ == "__main__":
    main()
