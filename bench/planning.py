"""Planning benchmark (issue #4): MPC and iLQG with the true simulator and with fitted
time-varying linear-Gaussian models, beside random and scripted controllers.

For every task whose reward r(x, u) is a JAX function (default: the manipulation tasks and
cartpole; ``--all`` adds locomotion), mean episode return (T steps, seeds 0, 1, ...) of

* ``random``     uniform actions in [-1, 1];
* ``scripted``   the task's scripted controller (``TASKS[id].scripted``);
* ``mpc_true``   MPC with the simulator itself (iLQG on finite-difference linearisations,
                 horizon H, 2 iterations per step, warm-started; appendix 8.6);
* ``mpc_lg``     MPC through a time-varying linear-Gaussian model refitted every n = 5
                 episodes (GMM prior) on the episodes MPC itself produced ("MPC-1" with a
                 fitted model); the first 5 episodes are Gaussian noise (std 0.3). Reported:
                 mean return of the last batch of 5 and of the best batch;
* ``ilqg_lg``    the same loop with one KL-constrained iLQG step per refit (section 5.3 +
                 Levine & Abbeel 2014, kl_step 0.5 per step), sampling the linear-Gaussian
                 controller -- the iLQG-x controller of Figure 2.

and timings (wall clock, compilation excluded by a warm-up call): one iLQG iteration with
the simulator (H steps: finite differences + backward pass + 6-step line search), one MPC
step, one unconstrained iLQG iteration through the fitted model over the full horizon T,
one KL-constrained step (dual search on eta), one linear-Gaussian refit (5 new episodes,
GMM prior warm-started on the previous 20 and updated with the 5), one neural-model refit
(1000 Adam steps, 200x200, 25 episodes).

    .venv/bin/python bench/planning.py                      # default tasks, ~10-20 min
    .venv/bin/python bench/planning.py --tasks nafrl/Cartpole-v1 --rounds 4 --mpc-episodes 1
    .venv/bin/python bench/planning.py --all

Results go to ``bench/results/planning.json`` (with the machine's load average: the
machines here are shared, so timings are noisy) and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

import nafrl.envs  # noqa: F401  (registers the tasks)
from nafrl.envs.registry import TASKS
from nafrl.models import LinearGaussianDynamics, NeuralDynamics, SimulatorDynamics
from nafrl.planning import MPC, GuidedConfig, GuidedExploration, ilqg_solve
from nafrl.planning.ilqg import LinearGaussianController

DEFAULT_TASKS = [
    "nafrl/Cartpole-v1",
    "nafrl/ReacherSingle-v1",
    "nafrl/Reacher-v1",
    "nafrl/Peg-v1",
    "nafrl/Canada2d-v1",
    "nafrl/GripperSingle-v1",
]
HORIZON = {"nafrl/Cartpole-v1": 30}  # MPC horizon H; 20 elsewhere


def _episode(env: gym.Env, seed: int, act: Any) -> float:
    obs, _ = env.reset(seed=seed)
    ret, done, t = 0.0, False, 0
    while not done:
        obs, r, term, trunc, _ = env.step(act(obs, t))
        ret, done, t = ret + float(r), term or trunc, t + 1
    return ret


def random_return(task: str, episodes: int) -> float:
    env = gym.make(task)
    rng = np.random.default_rng(0)
    return float(
        np.mean(
            [
                _episode(env, s, lambda o, t: rng.uniform(-1, 1, env.action_space.shape))
                for s in range(episodes)
            ]
        )
    )


def scripted_return(task: str, episodes: int) -> float | None:
    spec = TASKS[task]
    if spec.scripted is None:
        return None
    env = gym.make(task)
    policy = spec.scripted(env)
    return float(np.mean([_episode(env, s, lambda o, t: policy(o)) for s in range(episodes)]))


def mpc_true(task: str, episodes: int, horizon: int) -> tuple[float, float]:
    """Mean return and seconds per MPC step (after the first step of the first episode)."""
    env = gym.make(task)
    sim = SimulatorDynamics(env)
    mpc = MPC(
        sim,
        env.unwrapped.reward,
        horizon=horizon,
        iterations=2,
        episode_horizon=env.unwrapped.horizon,
    )
    rets, times = [], []
    for s in range(episodes):
        mpc.reset()

        def act(o: np.ndarray, t: int) -> np.ndarray:
            t0 = time.perf_counter()
            u = mpc.act(env.unwrapped.get_state(), t)
            times.append(time.perf_counter() - t0)
            return u

        rets.append(_episode(env, s, act))
    return float(np.mean(rets)), float(np.median(times[1:]))


def guided_loop(task: str, mode: str, rounds: int) -> dict[str, Any]:
    """Rounds of n = 5 episodes; the controller is refitted after each round."""
    env = gym.make(task)
    cfg = GuidedConfig(ilqg_fraction=1.0, model="linear", mode=mode, kl_step=0.5, mpc_horizon=20)
    guide = GuidedExploration(env, cfg)
    key, rng = jax.random.PRNGKey(0), np.random.default_rng(0)
    batch_returns: list[float] = []
    for r in range(rounds):
        rets = []
        for i in range(cfg.refit_every):
            obs, _ = env.reset(seed=1000 * r + i)
            key, k = jax.random.split(key)
            driven = guide.start_episode(k, env)
            xs, us, ret = [obs], [], 0.0
            for t in range(env.unwrapped.horizon):
                if driven:
                    key, k = jax.random.split(key)
                    u = guide.act(obs, t, k)
                else:
                    u = np.clip(0.3 * rng.standard_normal(env.action_space.shape), -1, 1)
                obs, rew, *_ = env.step(u)
                xs.append(obs)
                us.append(u)
                ret += float(rew)
            guide.observe_episode(np.array(xs), np.array(us))
            rets.append(ret)
        batch_returns.append(float(np.mean(rets)))
    return {
        "last": batch_returns[-1],
        "best": max(batch_returns[1:] or batch_returns),
        "per_round": batch_returns,
    }


def _collect(task: str, episodes: int, seed0: int = 0) -> tuple[np.ndarray, np.ndarray]:
    env = gym.make(task)
    rng = np.random.default_rng(seed0)
    X, U = [], []
    for s in range(episodes):
        obs, _ = env.reset(seed=seed0 + s)
        xs, us = [obs], []
        for _ in range(env.unwrapped.horizon):
            u = np.clip(0.3 * rng.standard_normal(env.action_space.shape), -1, 1)
            obs, *_ = env.step(u)
            xs.append(obs)
            us.append(u)
        X.append(xs)
        U.append(us)
    return np.array(X), np.array(U)


def _timeit(fn: Any, repeats: int = 3) -> float:
    fn()  # warm-up: compilation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def timings(task: str, horizon: int) -> dict[str, float]:
    env = gym.make(task)
    env.reset(seed=0)
    reward = env.unwrapped.reward
    T, du = env.unwrapped.horizon, env.action_space.shape[0]
    out: dict[str, float] = {}

    sim = SimulatorDynamics(env)
    z0 = sim.state_from(env.unwrapped.get_state())

    def sim_iters() -> None:
        _, info = ilqg_solve(
            sim, reward, z0, np.zeros((horizon, du)), iterations=3, u_bounds=(-1.0, 1.0), tol=0.0
        )
        out["_sim_its"] = info.iterations

    out["ilqg_iter_true_s"] = _timeit(sim_iters) / max(1, out.pop("_sim_its", 3))

    X, U = _collect(task, 25)
    fit_times = []
    for _ in range(3):  # a refit as in training: prior warm-started on the last 20 episodes
        lg = LinearGaussianDynamics()
        lg.prior.update(X[:20], U[:20])  # type: ignore[union-attr]
        t0 = time.perf_counter()
        lg.fit(X[20:], U[20:])
        fit_times.append(time.perf_counter() - t0)
    out["refit_linear_s"] = float(np.median(fit_times))
    x0 = lg.x0_mean

    def lg_iters() -> None:
        _, info = ilqg_solve(
            lg, reward, x0, np.zeros((T, du)), iterations=3, u_bounds=(-1.0, 1.0), tol=0.0
        )
        out["_lg_its"] = info.iterations

    out["ilqg_iter_linear_s"] = _timeit(lg_iters) / max(1, out.pop("_lg_its", 3))
    prev = LinearGaussianController.from_samples(X[20:], U[20:], 0.1)
    out["kl_step_linear_s"] = _timeit(
        lambda: ilqg_solve(
            lg, reward, x0, np.zeros((T, du)), prev=prev, kl_step=0.5, x0_cov=lg.x0_cov
        )
    )
    nn = NeuralDynamics(train_steps=1000)
    out["refit_neural_s"] = _timeit(lambda: nn.fit(X, U), repeats=2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="*", default=None, help="task ids (default: manipulation)")
    p.add_argument("--all", action="store_true", help="every task with a reward function")
    p.add_argument("--episodes", type=int, default=5, help="random / scripted episodes")
    p.add_argument("--mpc-episodes", type=int, default=2, help="true-model MPC episodes")
    p.add_argument("--rounds", type=int, default=6, help="refits of the fitted-model loops")
    p.add_argument("--horizon", type=int, default=None, help="MPC horizon H (default 20/30)")
    p.add_argument("--skip-lg", action="store_true", help="skip the fitted-model loops")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "planning.json"))
    args = p.parse_args()
    tasks = args.tasks or (
        [t for t, s in TASKS.items() if s.has_reward_fn] if args.all else DEFAULT_TASKS
    )
    results: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "jax": jax.__version__,
            "loadavg_start": os.getloadavg(),
        },
        "tasks": {},
    }
    for task in tasks:
        if not TASKS[task].has_reward_fn:
            print(f"skip {task}: no reward function")
            continue
        H = args.horizon or HORIZON.get(task, 20)
        row: dict[str, Any] = {"H": H}
        t0 = time.perf_counter()
        row["random"] = random_return(task, args.episodes)
        row["scripted"] = scripted_return(task, args.episodes)
        row["mpc_true"], row["mpc_step_true_s"] = mpc_true(task, args.mpc_episodes, H)
        if not args.skip_lg:
            row["mpc_lg"] = guided_loop(task, "mpc", args.rounds)
            row["ilqg_lg"] = guided_loop(task, "ilqg", args.rounds)
        row.update(timings(task, H))
        row["wall_s"] = time.perf_counter() - t0
        results["tasks"][task] = row
        print(task, json.dumps(row, default=float), flush=True)
    results["machine"]["loadavg_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=float))

    def f(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, dict):
            return f"{v['last']:.2f} (best {v['best']:.2f})"
        return f"{v:.3g}" if abs(v) < 1e-2 else f"{v:.2f}"

    cols = [
        "random",
        "scripted",
        "mpc_true",
        "mpc_lg",
        "ilqg_lg",
        "mpc_step_true_s",
        "ilqg_iter_true_s",
        "ilqg_iter_linear_s",
        "kl_step_linear_s",
        "refit_linear_s",
        "refit_neural_s",
    ]
    print("\n| task | H | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for task, row in results["tasks"].items():
        print(f"| {task} | {row['H']} | " + " | ".join(f(row.get(c)) for c in cols) + " |")
    print(
        f"\nwritten {args.out}; load average {results['machine']['loadavg_start']} -> "
        f"{results['machine']['loadavg_end']}"
    )


if __name__ == "__main__":
    main()
