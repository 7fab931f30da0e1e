"""What replanning MPC only every k steps costs in return, and saves in time (Table 2's MPC).

Table 2's guided episodes act with true-model MPC (appendix 8.6: H = 20, 2 iLQG
iterations); replanning at every step makes them ~20x dearer than a model-free step, and
the MPC columns ~90% of Table 2's compute. Between plans, ``MPC(replan_every=k)`` follows
the last plan's feedback law u = u_plan + K (z - z_plan). The paper does not say how often
it replans. Per task and k, on the same start states (episode seeds 0..n-1) and the same
noise draws:

* ``mpc``     noiseless MPC: the planner's own quality;
* ``guided``  MPC's action + OU noise of std 0.3 (theta 0.15), clipped to [-1, 1]: what a
              guided training episode executes (``ModelBasedAcceleration.guided_action``).

Reported: the mean return, its paired difference from k = 1 with a 95% bootstrap interval
over episodes, and the seconds per control step (wall time of whole episodes over their
steps, so the steps between plans count; machine load hits every k alike because the k
alternate within each episode seed).

    .venv/bin/python bench/mpc_replan.py                     # ~30 min on a loaded 2-core box
    .venv/bin/python bench/mpc_replan.py --tasks nafrl/Reacher-v1 --episodes 2 --k 1 5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import nafrl.envs  # noqa: F401  (registers the tasks)
from nafrl.models.simulator import SimulatorDynamics
from nafrl.planning.mpc import MPC

TASKS = ("nafrl/Reacher-v1", "nafrl/Canada2d-v1", "nafrl/Cheetah-v1")


def ou_noise(T: int, du: int, seed: int, scale: float = 0.3, theta: float = 0.15) -> np.ndarray:
    """The exploration process of nafrl.exploration ('ou'), stationary std ``scale``."""
    rng = np.random.default_rng(seed)
    a = np.exp(-theta)
    n, out = np.zeros(du), np.empty((T, du))
    for t in range(T):
        n = a * n + np.sqrt(1 - a**2) * scale * rng.standard_normal(du)
        out[t] = n
    return out


def episode(
    env: gym.Env, mpc: MPC, seed: int, noise: np.ndarray | None
) -> tuple[float, float, int]:
    """Return, wall seconds and steps of one episode from ``env.reset(seed=seed)``."""
    task = env.unwrapped
    env.reset(seed=seed)
    mpc.reset()
    total, t, done = 0.0, 0, False
    start = time.perf_counter()
    while not done:
        u = mpc.act(task.get_state(), t)
        if noise is not None:
            u = np.clip(u + noise[t], -1.0, 1.0)
        _, r, terminated, truncated, _ = env.step(u)
        total, t, done = total + float(r), t + 1, terminated or truncated
    return total, time.perf_counter() - start, t


def bootstrap_ci(d: np.ndarray, reps: int = 10_000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    means = rng.choice(d, (reps, len(d))).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def measure(task: str, ks: list[int], episodes: int, horizon: int) -> dict[str, Any]:
    env = gym.make(task)
    T, du = env.unwrapped.horizon, env.action_space.shape[0]
    mpcs = {
        k: MPC(
            SimulatorDynamics(env),
            env.unwrapped.reward,
            horizon=horizon,
            iterations=2,
            episode_horizon=T,
            replan_every=k,
        )
        for k in ks
    }
    episode(env, mpcs[ks[0]], 10_000, None)  # compile the planner's jitted parts, untimed
    out: dict[str, Any] = {"T": T, "du": du, "H": horizon}
    for mode in ("mpc", "guided"):
        rets = {k: [] for k in ks}
        secs = {k: 0.0 for k in ks}
        steps = {k: 0 for k in ks}
        for s in range(episodes):
            noise = None if mode == "mpc" else ou_noise(T, du, 1000 + s)
            for k in ks:
                ret, sec, n = episode(env, mpcs[k], s, noise)
                rets[k].append(ret)
                secs[k] += sec
                steps[k] += n
            print(task, mode, "seed", s, {k: round(rets[k][-1], 3) for k in ks}, flush=True)
        base = np.asarray(rets[ks[0]])
        out[mode] = {}
        for k in ks:
            r = np.asarray(rets[k])
            out[mode][str(k)] = {
                "returns": r.tolist(),
                "mean_return": float(r.mean()),
                "diff_vs_k1": float((r - base).mean()),
                "diff_ci": bootstrap_ci(r - base),
                "sec_per_step": secs[k] / steps[k],
                "speedup": (secs[ks[0]] / steps[ks[0]]) / (secs[k] / steps[k]),
            }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="*", default=list(TASKS))
    p.add_argument("--k", nargs="*", type=int, default=[1, 2, 5], help="replan_every values")
    p.add_argument("--episodes", type=int, default=3, help="episode seeds per task and mode")
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "mpc_replan.json"))
    args = p.parse_args()
    if args.k[0] != 1:
        p.error("--k must start with 1, the baseline the others are compared with")
    res: dict[str, Any] = {"loadavg_start": os.getloadavg(), "k": args.k, "tasks": {}}
    for task in args.tasks:
        res["tasks"][task] = measure(task, args.k, args.episodes, args.horizon)
        Path(args.out).write_text(json.dumps(res, indent=1))
    res["loadavg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(res, indent=1))
    print("\n| task | mode | k | mean return | minus k=1 [95% CI] | ms per step | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for task, r in res["tasks"].items():
        for mode in ("mpc", "guided"):
            for k, v in r[mode].items():
                lo, hi = v["diff_ci"]
                print(
                    f"| {task.split('/')[1]} | {mode} | {k} | {v['mean_return']:.3f} | "
                    f"{v['diff_vs_k1']:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
                    f"{1e3 * v['sec_per_step']:.0f} | {v['speedup']:.1f}x |"
                )


if __name__ == "__main__":
    main()
