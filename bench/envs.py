"""Environment step rate versus raw MuJoCo, for every registered nafrl task.

For each task: reset with seed 0, draw a fixed sequence of uniform random
actions, then time, chunk by chunk (best of ``--repeats`` per chunk)

* ``raw``:       ``data.ctrl[:] = ctrl; mujoco.mj_step(model, data, frame_skip)``
                 from the same initial state (same physics, same substeps);
* ``env``:       ``env.unwrapped.step(action)``;
* ``gym.make``:  ``env.step(action)`` through Gymnasium's default wrappers
                 (PassiveEnvChecker, OrderEnforcing, TimeLimit).

Both replay the same actions from the same state, so they integrate the same
trajectory (episodes run on past T; no resets inside the timed loop). Times
are this thread's CPU time (``time.thread_time``), so other load on the
machine does not count. The overhead is ``t_env / t_raw - 1``; the target is
< 25 % on every task.

    MUJOCO_GL=osmesa .venv/bin/python bench/envs.py [--steps 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import mujoco
import numpy as np

from nafrl.envs import TASKS, register_all

# CPU time of this thread: other processes on a shared machine do not inflate it.
_clock = time.thread_time


def _time_raw(env: gym.Env, state: np.ndarray, ctrls: np.ndarray) -> float:
    e = env.unwrapped
    e.set_state(state)
    m, d, k = e.model, e.data, e.frame_skip
    ctrl = d.ctrl
    t0 = _clock()
    for c in ctrls:
        ctrl[:] = c
        mujoco.mj_step(m, d, k)
    return _clock() - t0


def _time_env(env: gym.Env, state: np.ndarray, actions: np.ndarray) -> float:
    env.unwrapped.set_state(state)
    step = env.step
    t0 = _clock()
    for a in actions:
        step(a)
    return _clock() - t0


def bench_task(task_id: str, steps: int, repeats: int, chunk: int = 100) -> dict[str, float]:
    """Seconds per step for raw MuJoCo, the env, and gym.make.

    The action sequence is cut into chunks; each chunk is replayed ``repeats``
    times per variant from the same saved state, alternating variants, and
    the fastest replay counts (robust to other load on the machine).
    """
    wrapped = gym.make(task_id)
    env = wrapped.unwrapped
    wrapped.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, (steps, *env.action_space.shape)).astype(np.float32)
    lo, hi = env.model.actuator_ctrlrange.T
    ctrls = (lo + hi) / 2 + (hi - lo) / 2 * actions.astype(np.float64)
    starts = []
    for i in range(0, steps, chunk):  # the states where the chunks begin
        starts.append(env.get_state())
        for a in actions[i : i + chunk]:
            env.step(a)
    total = {"raw": 0.0, "env": 0.0, "make": 0.0}
    for j, state in enumerate(starts):
        sl = slice(j * chunk, (j + 1) * chunk)
        best = {"raw": np.inf, "env": np.inf, "make": np.inf}
        for _ in range(repeats):
            best["raw"] = min(best["raw"], _time_raw(env, state, ctrls[sl]))
            best["env"] = min(best["env"], _time_env(env, state, actions[sl]))
            best["make"] = min(best["make"], _time_env(wrapped, state, actions[sl]))
        for key in total:
            total[key] += best[key] / steps
    wrapped.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tasks", nargs="*", default=None, help="task ids (default: all)")
    args = parser.parse_args()
    register_all()
    ids = args.tasks or list(TASKS)
    header = (
        f"{'task':24s} {'substeps':>8s} {'raw steps/s':>12s} {'env steps/s':>12s} "
        f"{'overhead':>9s} {'make steps/s':>13s} {'overhead':>9s}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for task_id in ids:
        t = bench_task(task_id, args.steps, args.repeats)
        k = gym.make(task_id).unwrapped.frame_skip
        ov_env, ov_make = t["env"] / t["raw"] - 1, t["make"] / t["raw"] - 1
        worst = max(worst, ov_env)
        print(
            f"{task_id:24s} {k:8d} {1 / t['raw']:12,.0f} {1 / t['env']:12,.0f} "
            f"{ov_env:9.1%} {1 / t['make']:13,.0f} {ov_make:9.1%}"
        )
    verdict = "OK" if worst < 0.25 else "ABOVE TARGET"
    print(f"\nworst env overhead {worst:.1%} (target < 25%): {verdict}")


if __name__ == "__main__":
    main()
