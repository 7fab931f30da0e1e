"""Command-line helpers for the tasks (wired into the ``nafrl`` CLI by :mod:`nafrl.cli`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

from nafrl.envs.registry import TASKS, make

__all__ = ["random_return", "record_policy", "render", "tasks"]


def random_return(task_id: str, episodes: int = 50, seed: int = 0) -> tuple[float, float]:
    """(mean return of a uniform-random agent over ``episodes``, env steps per second).

    Episode i starts from ``reset(seed=seed + i)``; the actions come from one
    ``numpy.random.default_rng(seed)`` stream, so the result is reproducible.
    """
    if episodes < 1:
        raise ValueError(f"random_return: episodes={episodes}; expected an integer >= 1")
    env = make(task_id)
    rng = np.random.default_rng(seed)
    returns, steps, elapsed = [], 0, 0.0
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            a = rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)
            t0 = time.perf_counter()
            _, r, terminated, truncated, _ = env.step(a)
            elapsed += time.perf_counter() - t0
            total, steps, done = total + float(r), steps + 1, terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns)), steps / max(elapsed, 1e-12)


def tasks(episodes: int = 50) -> None:
    """Print every registered task: sizes, horizon T, the random-agent return measured over
    ``episodes`` seeded episodes beside Table 1's random and best values, and env steps/s.

    Single-target variants (section 6.3) show their parent domain's Table 1 row.
    """
    from rich.console import Console
    from rich.table import Table

    from nafrl.experiments.paper import TABLE1, domain_of

    table = Table(title=f"nafrl tasks (paper Table 3); random return over {episodes} episodes")
    cols = ("id", "obs", "act", "T", "tags", "r(x,u)", "random", "paper random", "paper best",
            "steps/s")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("id", "tags") else "right", no_wrap=True)
    for task_id, spec in TASKS.items():
        env = make(task_id)
        n_obs, n_act = env.observation_space.shape[0], env.action_space.shape[0]
        env.close()
        ret, sps = random_return(task_id, episodes=episodes)
        domain = domain_of(task_id)
        row = TABLE1.get(domain) if domain is not None else None
        table.add_row(
            task_id,
            str(n_obs),
            str(n_act),
            str(spec.horizon),
            ",".join(spec.tags),
            "yes" if spec.has_reward_fn else "no",
            f"{ret:.3g}",
            "-" if row is None else f"{row.random:.3g}",
            "-" if row is None else f"{row.best:.3g}",
            f"{sps:,.0f}",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    console.print(table)


def render(task_id: str, out: Path, seed: int = 0, width: int = 480, height: int = 480) -> None:
    """Save a PNG of ``task_id`` right after ``reset(seed=seed)``."""
    import imageio.v3 as iio

    env = make(task_id, render_mode="rgb_array", width=width, height=height)
    env.reset(seed=seed)
    frame = env.render()
    env.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out, np.asarray(frame))
    print(f"wrote {out}")


def record_policy(
    task_id: str,
    policy: Callable[[np.ndarray], np.ndarray] | None,
    out: Path,
    episodes: int = 1,
    seed: int = 0,
    width: int = 320,
    height: int = 320,
) -> list[float]:
    """Write an MP4 of ``policy`` (obs -> action) for ``episodes`` episodes; returns the returns.

    ``policy=None`` uses the task's scripted controller.
    """
    import imageio

    if task_id in TASKS or task_id.startswith("nafrl/"):
        env: gym.Env = make(task_id, render_mode="rgb_array", width=width, height=height)
    else:  # any Gymnasium id that renders rgb_array (e.g. InvertedPendulum-v5)
        env = gym.make(task_id, render_mode="rgb_array", width=width, height=height)
    if policy is None:
        factory = TASKS[task_id].scripted
        if factory is None:
            raise ValueError(f"{task_id} has no scripted controller; pass a policy")
        policy = factory(env)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fps = env.metadata.get("render_fps", 20)
    returns = []
    with imageio.get_writer(out, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            writer.append_data(env.render())
            total, done = 0.0, False
            while not done:
                obs, r, terminated, truncated, _ = env.step(policy(obs))
                writer.append_data(env.render())
                total, done = total + float(r), terminated or truncated
            returns.append(total)
    env.close()
    print(f"wrote {out} ({episodes} episode(s), returns {[round(r, 3) for r in returns]})")
    return returns
