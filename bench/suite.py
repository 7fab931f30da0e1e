"""Sample-efficiency suite against peers (issue 13): NAF and DDPG (ours, defaults) versus
Stable-Baselines3 DDPG, TD3 and SAC with RL Zoo hyperparameters, equal env-step budgets.

Each of our runs is a one-run sweep through nafrl's runner
(:func:`nafrl.experiments.sweep.run_sweep`) in
``bench/results/suite/work/nafrl/<agent>/<task>/seed<k>/``, so any selection of agents,
tasks and seeds resumes in place (an interrupted run continues from its last checkpoint).
Each SB3 run is a plain subprocess job (``python bench/suite.py sb3-job ...``) in
``.../work/sb3/<agent>/<task>/seed<k>/`` writing the same files (``evals.csv``:
total_steps, test_return, test_return_std, wall_time; ``done.json`` last), restarted from
scratch if interrupted. Finished runs are skipped on a rerun. A run folder's id hashes its
whole Config, not the code: after a change to the code that trains, move
``bench/results/suite/work`` away before rerunning.

Runs of ours made earlier with ``bench/reliability.py`` at the suite's budget and today's
defaults can be *adopted* instead of rerun (``python bench/suite.py adopt ...``, into
``.../work/adopted/<agent>/<task>/seed<k>/``): both scripts train through the same
``OffPolicyAgent`` with the same seeding and test cadence, so the training is the same
function of the seed (measured: NAF's suite run on Reacher-v5 seed 0 and its reliability
run with the same Config have identical test returns to the last digit at every one of
the 200 tests; the two differ in XLA flags, reliability.py running with YNNPACK and the
sweep's workers without, which left those numbers equal but need not on every task: with
the paper's networks on canada2d the two diverge from the first update, 2026-12-07). The
other difference is the final test: the last 5-episode test of the
reliability run instead of a 10-episode test at the budget; the report says which runs
were adopted.

    .venv/bin/pip install -e '.[bench]'          # stable-baselines3 + torch
    .venv/bin/python bench/suite.py run --tasks InvertedPendulum-v5 --seeds 0 1 2 --workers 2
    .venv/bin/python bench/suite.py report       # from what is finished so far

The report (``bench/results/suite/report.md``, ``report.json``, ``figures/``) has per task:
learning curves (mean over seeds, 95% bootstrap band), final and best test returns with 95%
bootstrap intervals, NAF's probability of improvement over each peer (Agarwal et al. 2021;
final returns), and each agent's return at equal wall time (the wall time the fastest agent
needed for the whole budget). Statistics: :mod:`nafrl.experiments.stats`.

Test returns: ours are the runner's evaluations (every ``eval_interval`` = 5 training
episodes, 5 deterministic episodes; the final one 10 episodes); SB3's are the same
(deterministic policy, 5 episodes every ``budget / 10`` steps, 10 at the end).
Wall time: seconds of training only (env steps and updates; tests excluded, ours from
episodes.csv's time_env + time_update), one CPU thread per run (torch and XLA both limited
to one thread), at most ``--workers`` runs at a time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "suite"
#: Run folders. Git ignores them (.gitignore); the small files of finished runs (CSVs,
#: config.json, done.json, sweep.json) are committed with ``git add -f`` so that a fresh
#: checkout skips them on a rerun and the report can be rebuilt; checkpoints never are.
WORK = RESULTS / "work"

#: Env-step budget per task, the same for every agent (full suite): the sample-efficiency
#: regime. The peers reach their plateau on the easy tasks; on Hopper and HalfCheetah 100k
#: steps is early learning for all five agents (the RL Zoo trains them for 1M), chosen so
#: that the 125 runs fit in about a day of this 2-core machine (SB3 runs at 60-150 steps/s
#: on one thread).
BUDGETS: dict[str, int] = {
    "InvertedPendulum-v5": 20_000,
    "InvertedDoublePendulum-v5": 50_000,
    "Reacher-v5": 50_000,
    "Hopper-v5": 100_000,
    "HalfCheetah-v5": 100_000,
}
#: A seed "learned" a task when its best test return reaches this (issue 13 asks NAF to learn
#: on at least 4 of 5 seeds). The easy tasks' thresholds are near their maxima (1000, about
#: 9350, about -4 for the RL Zoo's TD3); Hopper's and HalfCheetah's are what the peers pass
#: early in learning, since 100k steps is far from their plateaus. Hopper's is 1250, not
#: 1000: standing still for the whole episode earns the alive bonus, 1025-1048 in our runs
#: (bench/results/reliability/README.md, "TD3's exploration on the stuck seeds"), so 1000
#: counted a policy that never hops as learned; 1250 asks for 0.25 m/s forward on average
#: over a full episode (the forward reward is the velocity, per step).
LEARNED: dict[str, float] = {
    "InvertedPendulum-v5": 950.0,
    "InvertedDoublePendulum-v5": 9000.0,
    "Reacher-v5": -6.0,
    "Hopper-v5": 1250.0,
    "HalfCheetah-v5": 1500.0,
}
#: A seed that learned "collapsed" when its final return lost more than this fraction of the
#: way from the random policy's return to its best (issue 13: within 20% of its best).
COLLAPSE_FRACTION = 0.2
OURS: tuple[str, ...] = ("naf", "ddpg")
PEERS: tuple[str, ...] = ("sb3-ddpg", "sb3-td3", "sb3-sac")
EVAL_EPISODES, FINAL_EVAL_EPISODES, OUR_EVAL_INTERVAL = 5, 10, 5
EVALS_PER_RUN = 10  # SB3: a test every budget / 10 env steps

# RL Zoo (DLR-RM/rl-baselines3-zoo) hyperparameters. The zoo tunes the MuJoCo locomotion tasks
# with one block per algorithm ("&mujoco-defaults", HalfCheetah-v4 etc.) and has no MuJoCo
# entry for InvertedPendulum, InvertedDoublePendulum or Reacher (only their PyBullet
# versions), so every suite task uses the MuJoCo block:
# - TD3 and DDPG, hyperparams/td3.yml and ddpg.yml, "HalfCheetah-v4: &mujoco-defaults"
#   (zoo commit d29756c456caadbbebc15c35893674abb2453e0d): learning_starts 10000, normal
#   action noise std 0.1, train_freq 1, gradient_steps 1, learning_rate 1e-3,
#   batch_size 256, net_arch [400, 300]; the rest SB3 defaults (gamma 0.99, tau 0.005,
#   buffer 1e6).
# - SAC, hyperparams/sac.yml, "HalfCheetah-v3: &mujoco-defaults" (zoo commit c94924e):
#   learning_starts 10000; the rest SB3 defaults (learning_rate 3e-4, batch_size 256,
#   tau 0.005, gamma 0.99, ent_coef 'auto', net_arch [256, 256], buffer 1e6).
# learning_starts 10000 is tuned for 1e6-step budgets; with a smaller budget it is capped at
# budget // 10 (LEARNING_STARTS_FRACTION), stated in the report, so that no peer spends half
# its budget on random actions.
_ZOO_MUJOCO_DEFAULTS_TD3_DDPG: dict[str, Any] = dict(  # the same block in td3.yml and ddpg.yml
    learning_starts=10_000,
    noise_std=0.1,
    train_freq=1,
    gradient_steps=1,
    learning_rate=1e-3,
    batch_size=256,
    net_arch=[400, 300],
)
ZOO: dict[str, dict[str, Any]] = {
    "sb3-ddpg": dict(_ZOO_MUJOCO_DEFAULTS_TD3_DDPG),
    "sb3-td3": dict(_ZOO_MUJOCO_DEFAULTS_TD3_DDPG),
    "sb3-sac": dict(learning_starts=10_000),
}
LEARNING_STARTS_FRACTION = 10
#: Columns of our episodes.csv whose sum is the training time (tests excluded).
TRAIN_TIME = ("time_env", "time_update", "time_model_fit", "time_imagination")


def sb3_params(agent: str, budget: int) -> dict[str, Any]:
    """The zoo hyperparameters of ``agent`` with learning_starts capped at budget // 10."""
    hp = dict(ZOO[agent])
    hp["learning_starts"] = min(hp["learning_starts"], budget // LEARNING_STARTS_FRACTION)
    return hp


# ----------------------------------------------------------------------------- SB3 job
def sb3_job(agent: str, task: str, seed: int, steps: int, folder: Path) -> None:
    """Train one SB3 run into ``folder`` (evals.csv, then done.json written last)."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DDPG, SAC, TD3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(1)
    folder.mkdir(parents=True, exist_ok=True)
    hp = sb3_params(agent, steps)
    env, eval_env = gym.make(task), Monitor(gym.make(task))
    du = env.action_space.shape[0]
    kw: dict[str, Any] = dict(
        learning_starts=hp["learning_starts"], seed=seed, device="cpu", verbose=0
    )
    if agent == "sb3-sac":
        cls: Any = SAC
    else:
        cls = TD3 if agent == "sb3-td3" else DDPG
        kw.update(
            action_noise=NormalActionNoise(np.zeros(du), hp["noise_std"] * np.ones(du)),
            train_freq=hp["train_freq"],
            gradient_steps=hp["gradient_steps"],
            learning_rate=hp["learning_rate"],
            batch_size=hp["batch_size"],
            policy_kwargs=dict(net_arch=hp["net_arch"]),
        )
    model = cls("MlpPolicy", env, **kw)
    rows: list[dict[str, float]] = []
    t_start = time.perf_counter()
    eval_seconds = [0.0]
    every = max(1, steps // EVALS_PER_RUN)

    def evaluate(n: int) -> None:
        # wall_time counts training only, as for our agents (time_env + time_update).
        t0 = time.perf_counter()
        # Fixed test seeds per evaluation, disjoint across training seeds.
        eval_env.reset(seed=10_000 * (seed + 1) + len(rows))
        r, s = evaluate_policy(model, eval_env, n_eval_episodes=n, deterministic=True)
        rows.append(
            {
                "total_steps": model.num_timesteps,
                "test_return": float(r),
                "test_return_std": float(s),
                "wall_time": t0 - t_start - eval_seconds[0],
            }
        )
        eval_seconds[0] += time.perf_counter() - t0

    class Every(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every == 0 and self.num_timesteps < steps:
                evaluate(EVAL_EPISODES)
            return True

    model.learn(steps, callback=Every())
    evaluate(FINAL_EVAL_EPISODES)
    write_csv(folder / "evals.csv", rows)
    done = {
        "num_timesteps": model.num_timesteps,
        "wall_time": rows[-1]["wall_time"],
        "final_eval": rows[-1],
        "hyperparameters": hp,
    }
    from nafrl.runs import write_json_atomic

    write_json_atomic(folder / "done.json", done)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    from nafrl.logger import write_rows_atomic

    write_rows_atomic(path, rows, list(rows[0]))


# ----------------------------------------------------------------------------- the suite
def run_suite(
    tasks: Sequence[str],
    seeds: Sequence[int],
    agents: Sequence[str],
    workers: int,
    steps: int | None,
    work: Path,
    deadline: float | None = None,
) -> None:
    """Every (agent, task) of ours and every SB3 (agent, task, seed), ``workers`` at a time.

    ``deadline`` (epoch seconds): an SB3 job, which cannot resume, starts only if the
    finished runs of the same agent and task say it ends before then (:func:`sb3_seconds`;
    one without such a run starts); ours pass it on to the runner (``run_sweep``), which
    starts only the seeds that fit.

    Each of our (agent, task) pairs is its own sweep (``work/nafrl/<agent>/<task>``, one
    worker, seeds in turn), started as a subprocess (``ours-job``), so that any selection
    of tasks, agents and seeds resumes into the same folders and two pairs keep both cores
    busy. Ours go first, NAF before DDPG, cheap tasks first."""
    jobs: list[list[str]] = []
    for a in agents:
        if a not in OURS:
            continue
        for t in tasks:
            todo = [s for s in seeds if not _our_done(work, a, t, s)]
            if todo:
                budget = str(steps or BUDGETS[t])
                job = ["ours-job", a, t, budget, *map(str, todo), "--work", str(work)]
                jobs.append(job + (["--deadline", str(deadline)] if deadline else []))
    for a in agents:
        if a not in PEERS:
            continue
        for t in tasks:
            for s in seeds:
                folder = work / "sb3" / a / t / f"seed{s}"
                if not (folder / "done.json").is_file():
                    jobs.append(["sb3-job", a, t, str(s), str(steps or BUDGETS[t]), str(folder)])
    from nafrl.experiments.sweep import THREAD_ENV

    env = {**os.environ, **THREAD_ENV}

    def launch(job: list[str]) -> int:
        if deadline is not None and job[0] == "sb3-job":
            need = sb3_seconds(work, job[1], job[2], int(job[4]))
            if need is not None and time.time() + need > deadline:
                print(f"left for a later call (would end after the deadline): {' '.join(job)}")
                return 0
        print(" ".join(job), flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), *job]
        return subprocess.run(cmd, env=env, check=False).returncode

    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(pool.map(launch, jobs))
    failed = [j for j, c in zip(jobs, codes, strict=True) if c != 0]
    if failed:
        print(f"{len(failed)} job(s) failed: {failed}", file=sys.stderr)


def sb3_seconds(work: Path, agent: str, task: str, steps: int) -> float | None:
    """The median wall time of the finished SB3 runs of ``agent`` on ``task``, scaled to
    ``steps``; None if none has finished."""
    per_step = []
    for done in (work / "sb3" / agent / task).glob("seed*/done.json"):
        d = json.loads(done.read_text())
        if d.get("num_timesteps") and d.get("wall_time"):
            per_step.append(d["wall_time"] / d["num_timesteps"])
    return float(np.median(per_step)) * steps if per_step else None


def _our_folder(work: Path, agent: str, task: str, seed: int) -> Path:
    """The one-run sweep of our ``agent`` on ``task`` with ``seed``."""
    return work / "nafrl" / agent / task / f"seed{seed}"


def _our_runs(work: Path) -> list[tuple[str, str, int, Path]]:
    """(agent, task, seed, run folder) of every finished run of ours."""
    from nafrl.runs import read_json

    out = []
    for manifest in sorted((work / "nafrl").glob("*/*/seed*/sweep.json")):
        for r in read_json(manifest)["runs"]:
            folder = manifest.parent / "runs" / r["id"]
            if (folder / "done.json").is_file():
                out.append((r["algo"], r["task"], int(r["seed"]), folder))
    return out


def _our_done(work: Path, agent: str, task: str, seed: int) -> bool:
    folder = _our_folder(work, agent, task, seed)
    if (_adopted_folder(work, agent, task, seed) / "done.json").is_file():
        return True
    return (folder / "sweep.json").is_file() and any((folder / "runs").glob("*/done.json"))


def _adopted_folder(work: Path, agent: str, task: str, seed: int) -> Path:
    return work / "adopted" / agent / task / f"seed{seed}"


def adopt(
    agent: str,
    task: str,
    source: Path,
    variant: str,
    seeds: Sequence[int],
    work: Path,
    legacy: bool = False,
) -> list[Path]:
    """Take finished ``bench/reliability.py`` runs (``source/<agent>/<variant>/seed<k>``) as
    the suite's runs of ``agent`` on ``task`` with ``seeds``, after checking that they are
    what the suite would run: the Config the run recorded in done.json is ``agent``'s
    default one (tests aside), the run used the suite's budget, and it was tested every
    :data:`OUR_EVAL_INTERVAL` episodes. Runs older than that record need ``legacy``: then
    only ``variant`` is checked against today's defaults, which is right only if no default
    changed between the run and today (the caller's check, stated in done.json). Writes
    evals.csv, episodes.csv and done.json (whose ``final_eval`` is the run's last test) into
    :func:`_adopted_folder`."""
    import dataclasses

    from nafrl.config import Config, make_config, validate_for_algo
    from nafrl.runs import write_json_atomic

    sys.path.insert(0, str(HERE))
    from reliability import parse_variant

    name, overrides = parse_variant(variant)
    if agent not in OURS:
        raise SystemExit(f"adopt: agent {agent!r} is not ours; accepted: {', '.join(OURS)}")
    if task not in BUDGETS:
        raise SystemExit(f"adopt: task {task!r} is not a suite task; accepted: {list(BUDGETS)}")
    # What changes training; the test cadence is checked on the files below.
    ignore = {"eval_interval", "eval_episodes", "checkpoint_interval"}
    ours = validate_for_algo(make_config(), agent)

    def differences(config: Config) -> list[str]:
        theirs = validate_for_algo(config, agent)
        return [
            f"{f.name}={getattr(theirs, f.name)!r} (default {getattr(ours, f.name)!r})"
            for f in dataclasses.fields(ours)
            if f.name not in ignore and getattr(ours, f.name) != getattr(theirs, f.name)
        ]

    written = []
    for s in seeds:
        src = source / agent / name / f"seed{s}"
        files = {f: src / f for f in ("evals.csv", "episodes.csv", "done.json")}
        missing = [f for f, path in files.items() if not path.is_file()]
        if missing:
            raise SystemExit(f"adopt: {src} has no {', '.join(missing)} (not a finished run)")
        done = json.loads(files["done.json"].read_text())
        if "config" in done:
            # from_dict: a field added after the run reads as the value it ran with
            recorded = Config.from_dict(done["config"])
            checked, differ = "the run's recorded Config", differences(recorded)
            if recorded.eval_episodes != EVAL_EPISODES:
                differ.append(
                    f"eval_episodes={recorded.eval_episodes!r} (the suite's {EVAL_EPISODES})"
                )
        elif legacy:
            legacy_config = make_config(**overrides)  # overrides of the defaults of its day
            checked, differ = f"the variant {variant!r} (legacy run)", differences(legacy_config)
        else:
            raise SystemExit(
                f"adopt: {src}/done.json records no Config; pass --legacy to check only the "
                "variant against today's defaults (right only if no default changed since)"
            )
        if differ:
            raise SystemExit(f"adopt: {src} is not {agent}'s defaults: {', '.join(differ)}")
        if int(done.get("steps", -1)) != BUDGETS[task]:
            raise SystemExit(
                f"adopt: {src} ran {done.get('steps')} steps; the suite's {task} budget is "
                f"{BUDGETS[task]}"
            )
        with open(files["evals.csv"]) as f:
            rows = list(csv.DictReader(f))
        episodes = [int(r["episode"]) for r in rows]
        every = OUR_EVAL_INTERVAL
        if episodes != list(range(every, every * len(rows) + 1, every)):
            raise SystemExit(
                f"adopt: {src} was not tested every {every} episodes "
                f"(tests at episodes {episodes[:4]}...)"
            )
        dst = _adopted_folder(work, agent, task, s)
        dst.mkdir(parents=True, exist_ok=True)
        cols = ["episode", "total_steps", "test_return", "test_return_std", "wall_time"]
        write_csv(dst / "evals.csv", [{k: r[k] for k in cols} for r in rows])
        (dst / "episodes.csv").write_bytes(files["episodes.csv"].read_bytes())
        last = rows[-1]
        inside = src.resolve().is_relative_to(HERE.parent)
        record = {
            "adopted_from": str(src.resolve().relative_to(HERE.parent) if inside else src),
            "checked": checked,
            "final_eval": {
                "episode": int(last["episode"]),
                "total_steps": int(last["total_steps"]),
                "test_return": float(last["test_return"]),
                "test_return_std": float(last["test_return_std"]),
                "note": "the run's last periodic test, not a 10-episode test at the budget",
            },
            "num_timesteps": int(done["steps"]),
            "wall_time": float(done["wall_time"]),
        }
        write_json_atomic(dst / "done.json", record)
        written.append(dst)
    return written


def ours_job(
    agent: str,
    task: str,
    steps: int,
    seeds: Sequence[int],
    work: Path,
    deadline: float | None = None,
) -> None:
    """Our ``agent`` on ``task``, one seed after the other, each a one-run sweep through the
    experiment runner (so any selection of seeds resumes in place; a seed whose estimate
    ends after ``deadline`` is left for a later call)."""
    from nafrl.experiments.spec import SweepSpec
    from nafrl.experiments.sweep import run_sweep

    failed: dict[str, str] = {}
    for s in seeds:
        spec = SweepSpec(
            name=f"suite-{agent}-{task}-s{s}",
            algos=[agent],
            tasks=[task],
            seeds=[s],
            budget={"steps": steps},
            config={"eval_interval": OUR_EVAL_INTERVAL, "eval_episodes": EVAL_EPISODES},
            eval_episodes=FINAL_EVAL_EPISODES,
        )
        summary = run_sweep(
            spec, _our_folder(work, agent, task, s), workers=1, display=False, deadline=deadline
        )
        failed.update(summary.failed)
    for run_id, error in failed.items():
        print(f"failed: {run_id}: {error}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


def _cumulative_train_time(rows: list[dict[str, str]]) -> dict[int, float]:
    """Episode -> training seconds so far. Checkpoints written before the time split was saved
    restarted it from zero on resume: a drop in the series is such a resume, and the time
    before it is added back (episodes redone after the last checkpoint count twice, as they
    cost twice)."""
    out: dict[int, float] = {}
    offset, prev = 0.0, 0.0
    for r in rows:
        t = sum(float(r[k] or 0) for k in TRAIN_TIME)
        if t < prev:
            offset += prev
        prev = t
        out[int(r["episode"])] = offset + t
    return out


def collect(work: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(agent, task) -> finished runs [{seed, steps[], returns[], wall[], final, budget}]."""
    from nafrl.runs import read_json

    out: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def add(agent: str, task: str, seed: int, folder: Path, budget: int) -> None:
        with open(folder / "evals.csv") as f:
            rows = list(csv.DictReader(f))
        done = read_json(folder / "done.json")
        wall = np.array([float(r["wall_time"]) for r in rows])
        if (folder / "episodes.csv").is_file():  # ours: training time at each test
            with open(folder / "episodes.csv") as f:
                ep = _cumulative_train_time(list(csv.DictReader(f)))
            last = ep[max(ep)]
            wall = np.array([ep.get(int(r["episode"]), last) for r in rows])
        out.setdefault((agent, task), []).append(
            {
                "seed": seed,
                "budget": budget,
                "steps": np.array([float(r["total_steps"]) for r in rows]),
                "returns": np.array([float(r["test_return"]) for r in rows]),
                "wall": wall,
                "final": float(done["final_eval"]["test_return"]),
                "wall_time": float(wall[-1]),
            }
        )

    ran = set()
    for agent, task, seed, folder in _our_runs(work):
        add(agent, task, seed, folder, int(read_json(folder / "done.json")["num_timesteps"]))
        ran.add((agent, task, seed))
    for folder in sorted((work / "adopted").glob("*/*/seed*")):
        key = (folder.parent.parent.name, folder.parent.name, int(folder.name[4:]))
        if key not in ran and (folder / "done.json").is_file():  # a suite run wins
            add(*key, folder, int(read_json(folder / "done.json")["num_timesteps"]))
            out[key[:2]][-1]["adopted"] = True
    for folder in sorted((work / "sb3").glob("*/*/seed*")):
        if (folder / "done.json").is_file():
            add(
                folder.parent.parent.name,
                folder.parent.name,
                int(folder.name[4:]),
                folder,
                int(read_json(folder / "done.json")["num_timesteps"]),
            )
    return out


def random_return(task: str, episodes: int = 20) -> float:
    """Mean return of uniformly random actions over ``episodes`` seeded episodes."""
    import gymnasium as gym

    env = gym.make(task)
    env.action_space.seed(0)
    total = 0.0
    for i in range(episodes):
        env.reset(seed=i)
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += float(r)
            done = term or trunc
    env.close()
    return total / episodes


def tab_random(tab: dict[str, Any]) -> float:
    return float(next(iter(tab.values()))["random_return"]) if tab else float("nan")


def return_at(run: dict[str, Any], wall: float) -> float:
    """Test return of the last evaluation made within ``wall`` seconds (the first if none)."""
    ok = run["wall"] <= wall
    return float(run["returns"][ok][-1]) if ok.any() else float(run["returns"][0])


def report(work: Path, out: Path, note: str = "") -> dict[str, Any]:
    """Write report.md, report.json and figures/<task>.png from the finished runs.

    ``note`` (a paragraph on what has run) is kept in ``out/note.md``, so the report that
    ``run`` writes when it ends keeps the last note given to ``report --note``."""
    note_file = out / "note.md"
    if note:
        out.mkdir(parents=True, exist_ok=True)
        note_file.write_text(note.strip() + "\n")
    elif note_file.is_file():
        note = note_file.read_text().strip()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nafrl.experiments.stats import (
        bootstrap_ci,
        curves_on_common_grid,
        mean_and_band,
        probability_of_improvement,
        probability_of_improvement_ci,
    )

    runs = collect(work)
    tasks = sorted(
        {t for _, t in runs}, key=lambda t: list(BUDGETS).index(t) if t in BUDGETS else 99
    )
    agents = [a for a in (*OURS, *PEERS) if any((a, t) in runs for t in tasks)]
    (out / "figures").mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "budgets": {},
        "tasks": {},
        "zoo": ZOO,
        "learning_starts_cap": f"budget // {LEARNING_STARTS_FRACTION}",
    }
    md = [
        "# Sample-efficiency suite (bench/suite.py)",
        "",
        "Mean over seeds with 95% percentile-bootstrap intervals. *final*: the final "
        "evaluation (10 test episodes) at the budget; *best*: the best evaluation of the "
        "run; *at equal wall time*: the return of each run's last evaluation within the "
        "wall time the fastest agent (median over its seeds) needed for the whole budget. "
        "P(NAF > X): probability of improvement on final returns (Agarwal et al. 2021).",
        "",
        *([note, ""] if note else []),
    ]
    for t in tasks:
        fig, ax = plt.subplots(figsize=(6, 4))
        budget = max(r["budget"] for a in agents for r in runs.get((a, t), []))
        t_equal = min(
            float(np.median([r["wall_time"] for r in runs[(a, t)]]))
            for a in agents
            if (a, t) in runs
        )
        tab: dict[str, Any] = {}
        for a in agents:
            rs = runs.get((a, t), [])
            if not rs:
                continue
            finals = np.array([r["final"] for r in rs])
            bests = np.array([max(r["returns"].max(), r["final"]) for r in rs])
            at_wall = np.array([return_at(r, t_equal) for r in rs])
            rnd = random_return(t)
            learned = bests >= LEARNED.get(t, np.inf)
            collapsed = learned & (finals < bests - COLLAPSE_FRACTION * (bests - rnd))
            tab[a] = {
                "seeds": [r["seed"] for r in rs],
                "adopted_seeds": [r["seed"] for r in rs if r.get("adopted")],
                "learned": int(learned.sum()),
                "collapsed": int(collapsed.sum()),
                "random_return": rnd,
                "final": [float(finals.mean()), *bootstrap_ci(finals)],
                "best": [float(bests.mean()), *bootstrap_ci(bests)],
                "at_equal_wall": [float(at_wall.mean()), *bootstrap_ci(at_wall)],
                "final_per_seed": finals.tolist(),
                "wall_time_median": float(np.median([r["wall_time"] for r in rs])),
                "steps_per_sec": float(np.median([r["steps"][-1] / r["wall_time"] for r in rs])),
            }
            grid, vals = curves_on_common_grid([(r["steps"], r["returns"]) for r in rs])
            mean, lo, hi = mean_and_band(vals)
            ax.plot(grid, mean, label=f"{a} (n={len(rs)})")
            if len(rs) > 1:
                ax.fill_between(grid, lo, hi, alpha=0.2)
        if "naf" in tab:
            naf = np.array(tab["naf"]["final_per_seed"])
            for a in agents:
                if a != "naf" and a in tab:
                    other = np.array(tab[a]["final_per_seed"])
                    tab["naf"][f"P(naf>{a})"] = [
                        float(probability_of_improvement(naf, other)),
                        *probability_of_improvement_ci(naf, other),
                    ]
        ax.set_xlabel("environment steps")
        ax.set_ylabel("test return")
        ax.set_title(f"{t} (budget {budget:,} steps)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "figures" / f"{t}.png", dpi=90)
        plt.close(fig)
        result["budgets"][t] = budget
        result["tasks"][t] = {"equal_wall_time_s": t_equal, "agents": tab}
        md += [
            f"## {t}: {budget:,} env steps per run",
            "",
            f"![{t}](figures/{t}.png)",
            "",
            f"Learned: best test return ≥ {LEARNED.get(t, float('nan')):g}; collapsed: a "
            f"seed that learned and ended more than {COLLAPSE_FRACTION:.0%} of the way from "
            f"its best back to the random policy's return ({tab_random(tab):.1f}).",
            "",
            f"| agent | seeds | learned | collapsed | final | best | at {t_equal:.0f} s wall "
            "| median wall (s) | steps/s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for a, v in tab.items():

            def cell(x: list[float]) -> str:
                # whole numbers for returns in the hundreds, two decimals for Reacher's -4s
                d = 0 if max(abs(v) for v in x if not np.isnan(v)) >= 100 else 2
                if np.isnan(x[1]):  # one seed: no interval to show
                    return f"{x[0]:.{d}f} (one seed)"
                return f"{x[0]:.{d}f} [{x[1]:.{d}f}, {x[2]:.{d}f}]"

            md.append(
                f"| {a} | {len(v['seeds'])} | {v['learned']}/{len(v['seeds'])} "
                f"| {v['collapsed']} | {cell(v['final'])} | {cell(v['best'])} "
                f"| {cell(v['at_equal_wall'])} | {v['wall_time_median']:.0f} "
                f"| {v['steps_per_sec']:.0f} |"
            )
        for a, v in tab.items():
            if v["adopted_seeds"]:
                md += [
                    "",
                    f"{a}: seeds {', '.join(map(str, v['adopted_seeds']))} adopted from "
                    "bench/reliability.py runs with the same Config (`bench/suite.py adopt`; "
                    "their *final* is the last 5-episode test, up to one episode before "
                    "the budget).",
                ]
        if "naf" in tab:
            md += ["", "| P(NAF > X), final return | value [95% CI] |", "|---|---|"]
            for k, v in tab["naf"].items():
                if k.startswith("P(naf>"):
                    md.append(f"| {k[6:-1]} | {v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}] |")
        md.append("")
    md += ["## Peers' hyperparameters (RL Zoo, see bench/suite.py for the source)", ""]
    for a, hp in ZOO.items():
        md.append(f"- {a}: {hp}; learning_starts capped at budget // {LEARNING_STARTS_FRACTION}")
    md.append("")
    (out / "report.md").write_text("\n".join(md))
    (out / "report.json").write_text(json.dumps(result, indent=1))
    return result


OUT_HELP = "report folder (default: the parent of --work)"


def report_dir(work: Path, out: Path | None) -> Path:
    """Where the report goes: ``out`` if given, else the parent of ``work`` (the suite's own
    ``WORK`` sits in ``RESULTS``), so a side run (another budget, say) does not overwrite the
    suite's report (one did, 2026-12-07)."""
    return out if out is not None else work.resolve().parent


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run (or resume) the suite, then write the report")
    r.add_argument("--tasks", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    r.add_argument("--agents", nargs="+", default=[*OURS, *PEERS], choices=[*OURS, *PEERS])
    r.add_argument("--workers", type=int, default=2)
    r.add_argument(
        "--steps", type=int, default=None, help="override every task's budget (smoke runs)"
    )
    r.add_argument("--work", type=Path, default=WORK)
    r.add_argument("--out", type=Path, default=None, help=OUT_HELP)
    r.add_argument(
        "--deadline",
        default=None,
        help="HH:MM or 2h30m: start only the runs estimated to end before it (nafrl sweep run)",
    )
    p = sub.add_parser("report", help="write the report from the finished runs")
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--out", type=Path, default=None, help=OUT_HELP)
    p.add_argument("--note", default="", help="a paragraph for the report (scale, machine)")
    ad = sub.add_parser(
        "adopt", help="take finished bench/reliability.py runs of today's defaults as suite runs"
    )
    ad.add_argument("agent", choices=OURS)
    ad.add_argument("task", choices=list(BUDGETS))
    ad.add_argument("source", type=Path, help="reliability.py's --out folder (<task>/ level)")
    ad.add_argument("--variant", required=True, help="the run's --variant text, e.g. a=1,b=2")
    ad.add_argument("--seeds", nargs="+", type=int, required=True)
    ad.add_argument(
        "--legacy",
        action="store_true",
        help="runs whose done.json records no Config: check only --variant against today's "
        "defaults (right only if no default changed since the run)",
    )
    ad.add_argument("--work", type=Path, default=WORK)
    o = sub.add_parser("ours-job", help="(internal) our agent on one task, seeds in turn")
    o.add_argument("agent", choices=OURS)
    o.add_argument("task")
    o.add_argument("steps", type=int)
    o.add_argument("seeds", nargs="+", type=int)
    o.add_argument("--work", type=Path, default=WORK)
    o.add_argument("--deadline", type=float, default=None, help="epoch seconds")
    j = sub.add_parser("sb3-job", help="(internal) one SB3 run")
    j.add_argument("agent", choices=PEERS)
    j.add_argument("task")
    j.add_argument("seed", type=int)
    j.add_argument("steps", type=int)
    j.add_argument("folder", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "ours-job":
        ours_job(a.agent, a.task, a.steps, a.seeds, a.work, a.deadline)
        return
    if a.cmd == "adopt":
        for d in adopt(a.agent, a.task, a.source, a.variant, a.seeds, a.work, a.legacy):
            print(f"adopted: {d}")
        # work/ is ignored by git: adopted runs not committed are lost with the machine (the
        # suite's NAF rows were, once).
        print(f"keep them: git add -f $(python bench/keep.py {a.work / 'adopted'})")
        return
    if a.cmd == "sb3-job":
        sb3_job(a.agent, a.task, a.seed, a.steps, a.folder)
        return
    if a.cmd == "run":
        from nafrl.experiments.sweep import parse_deadline

        until = parse_deadline(a.deadline) if a.deadline else None
        run_suite(a.tasks, a.seeds, a.agents, a.workers, a.steps, a.work, until)
    report(a.work, report_dir(a.work, a.out), getattr(a, "note", ""))


if __name__ == "__main__":
    main()
