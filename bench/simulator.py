"""The true-dynamics model's cost (Table 2, section 6.3's true model): per task, the median
time of one finite-difference linearisation (H = 20) and of one MPC control step (H = 20,
2 iLQG iterations, warm-started, as in guided training episodes), for

* ``loop-central``  each simulator step from Python (``set_state`` + ``env.step`` per row)
                    with central differences: the implementation before 2026-12-03;
* ``batch-central`` the same differences, every batch of steps in one call of MuJoCo's C
                    ``rollout`` (bit-identical steps);
* ``batch-forward-setstate``  batched, forward differences (dz + du + 1 steps per time
                    step instead of 2 (dz + du)), the observations h(z) of the observation
                    derivatives through full ``set_state`` calls (mj_forward): the default
                    until the second 2026-12-03 change;
* ``batch-forward`` the default: as the last, h(z) by forward kinematics alone
                    (``MujocoTaskEnv.observe_state``, bit-identical observations).

All variants run in the same process, one after another per repetition, so machine load hits
them alike; the ratios are what to read.

    .venv/bin/python bench/simulator.py                  # ~3 min; bench/results/simulator.json
    .venv/bin/python bench/simulator.py --tasks nafrl/Reacher-v1 --reps 3
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

TASKS = ("nafrl/Reacher-v1", "nafrl/Canada2d-v1", "nafrl/Cheetah-v1", "nafrl/Cartpole-v1")


def loop_simulator(env: gym.Env) -> SimulatorDynamics:
    """Each step from Python, one row at a time (the implementation before the batching):
    the per-row loop SimulatorDynamics keeps for tasks that act between step and physics."""
    sim = SimulatorDynamics(env, differences="central")
    sim._batched = False
    return sim


def setstate_observations(env: gym.Env) -> SimulatorDynamics:
    """The default, but every h(z) through a full ``set_state`` (mj_forward)."""
    sim = SimulatorDynamics(env)
    sim._obs_of = sim._set  # set_state + observe per h(z)
    return sim


VARIANTS = {
    "loop-central": loop_simulator,
    "batch-central": lambda env: SimulatorDynamics(env, differences="central"),
    "batch-forward-setstate": setstate_observations,
    "batch-forward": lambda env: SimulatorDynamics(env),
}


def measure(task: str, reps: int, mpc_steps: int, horizon: int) -> dict[str, Any]:
    env = gym.make(task)
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    task_env = env.unwrapped
    state = task_env.get_state()
    sims = {k: make(env) for k, make in VARIANTS.items()}
    du = env.action_space.shape[0]
    u_hat = np.random.default_rng(0).uniform(-0.5, 0.5, (horizon, du))
    lin: dict[str, list[float]] = {k: [] for k in sims}
    step: dict[str, list[float]] = {k: [] for k in sims}
    for sim in sims.values():  # warm-up: the planner's jitted parts compile here
        MPC(sim, task_env.reward, horizon=horizon).act(state, 0)
    for _ in range(reps):
        for k, sim in sims.items():
            z0 = sim.state_from(state)
            x_hat = sim.rollout(z0, u_hat)
            t0 = time.perf_counter()
            sim.linearize_with_observation(x_hat, u_hat)
            lin[k].append(time.perf_counter() - t0)
            # 2 iLQG iterations per step (MPC's default), rewards masked past the episode end
            mpc = MPC(sim, task_env.reward, horizon=horizon, episode_horizon=task_env.horizon)
            task_env.set_state(state)
            u = mpc.act(task_env.get_state(), 0)  # the cold first plan is not timed
            for t in range(1, mpc_steps + 1):
                env.step(u)
                t0 = time.perf_counter()
                u = mpc.act(task_env.get_state(), t)
                step[k].append(time.perf_counter() - t0)
    out: dict[str, Any] = {"dz": sims["batch-forward"].dx, "du": du, "H": horizon}
    for k in sims:
        out[k] = {
            "linearize_ms": 1e3 * float(np.median(lin[k])),
            "mpc_step_ms": 1e3 * float(np.median(step[k])),
        }
    base = out["loop-central"]
    for k in ("batch-central", "batch-forward-setstate", "batch-forward"):
        out[k]["linearize_speedup"] = base["linearize_ms"] / out[k]["linearize_ms"]
        out[k]["mpc_step_speedup"] = base["mpc_step_ms"] / out[k]["mpc_step_ms"]
    prev, new = out["batch-forward-setstate"], out["batch-forward"]
    new["mpc_step_speedup_over_setstate"] = prev["mpc_step_ms"] / new["mpc_step_ms"]
    new["linearize_speedup_over_setstate"] = prev["linearize_ms"] / new["linearize_ms"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="*", default=list(TASKS))
    p.add_argument("--reps", type=int, default=5, help="repetitions (each: 1 linearisation)")
    p.add_argument("--mpc-steps", type=int, default=5, help="timed MPC steps per repetition")
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "simulator.json"))
    args = p.parse_args()
    results: dict[str, Any] = {"loadavg_start": os.getloadavg(), "tasks": {}}
    print("| task | dz, du | variant | linearise (ms) | MPC step (ms) | speed-up (lin., MPC) |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks:
        r = measure(task, args.reps, args.mpc_steps, args.horizon)
        results["tasks"][task] = r
        for k in VARIANTS:
            v = r[k]
            ratio = (
                f"{v['linearize_speedup']:.2f}x, {v['mpc_step_speedup']:.2f}x"
                if "linearize_speedup" in v
                else "1 (reference)"
            )
            if "mpc_step_speedup_over_setstate" in v:
                ratio += f"; MPC {v['mpc_step_speedup_over_setstate']:.2f}x over setstate"
            print(
                f"| {task} | {r['dz']}, {r['du']} | {k} | {v['linearize_ms']:.1f} | "
                f"{v['mpc_step_ms']:.1f} | {ratio} |",
                flush=True,
            )
    results["loadavg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
