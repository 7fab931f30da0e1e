"""Seed reliability of NAF / DDPG defaults (issue 13): controlled one-factor comparisons.

Each variant is the defaults plus a few overrides; every (variant, seed) run trains for a fixed
number of environment steps and saves its per-episode metrics (return, Q loss, mean V, mean and
max diag P, mean |TD error|) and its test returns as small CSVs. A summary (per-seed best and
final test return, learned / collapsed flags) goes to ``summary.json`` and ``summary.csv``, and
the per-seed curves to PNG figures. Finished runs are skipped, so the script resumes.

Example (what bench/results/reliability/ holds)::

    python bench/reliability.py --env Pendulum-v1 --steps 12000 --seeds 0 1 2 \\
        --variant default --variant tau=0.005 --variant max_log_diag=2 \\
        --variant learning_starts=5000 --variant reward_scale=0.1

``reward_scale`` is not a Config field: it multiplies the training rewards (the test returns
are measured on the unscaled task).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from nafrl.api import agent_class
from nafrl.env_utils import make_env
from nafrl.logger import write_rows_atomic
from nafrl.runs import write_json_atomic

#: Test return of a random policy and the "learned" threshold per task (test return, 5 episodes).
#: Pendulum-v1: random about -1200 to -1300; a swing-up policy scores about -150 to -250.
TASKS: dict[str, dict[str, float]] = {
    "Pendulum-v1": {"random": -1250.0, "learned": -400.0},
    "InvertedPendulum-v5": {"random": 10.0, "learned": 900.0},
    "InvertedDoublePendulum-v5": {"random": 60.0, "learned": 5000.0},
}
METRICS = ("return", "q_loss", "mean_v", "td_abs", "mean_diag_p", "max_diag_p", "mu_saturated")


def task_info(env_id: str) -> dict[str, float]:
    """Random return and threshold of a task outside TASKS: the peer suite's (bench/suite.py)."""
    from suite import LEARNED, random_return  # bench/ is on the path when run as a script

    return {"random": random_return(env_id), "learned": LEARNED.get(env_id, math.inf)}


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """'default' or 'a=1,b=2' -> (name, overrides); values are parsed as JSON when they can be."""
    if text == "default":
        return "default", {}
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if not value:
            raise SystemExit(f"--variant {text!r}: expected 'default' or 'field=value[,...]'")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return text.replace(",", "_"), out


def run_one(
    algo: str,
    env_id: str,
    seed: int,
    steps: int,
    overrides: dict[str, Any],
    folder: Path,
    evals: tuple[int, int] = (5, 5),
) -> None:
    """Train one run and write episodes.csv, evals.csv and done.json into ``folder``."""
    overrides = dict(overrides)
    scale = float(overrides.pop("reward_scale", 1.0))
    env: Any = env_id
    if scale != 1.0:
        env = gym.wrappers.TransformReward(gym.make(env_id), lambda r: scale * float(r))
    cls = agent_class(algo)
    # Evaluations use their own env and no training randomness: they never change training.
    kw: dict[str, Any] = dict(eval_interval=evals[0], eval_episodes=evals[1], checkpoint_interval=0)
    kw.update(overrides)
    m = cls(env, seed=seed, **kw)
    m._eval_env = make_env(env_id)  # test returns on the unscaled task
    t0 = time.perf_counter()
    m.learn(steps)
    wall = time.perf_counter() - t0
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("episodes.csv", m.episode_log), ("evals.csv", m.eval_log)):
        write_rows_atomic(folder / name, rows)
    # The resolved Config, so that bench/suite.py adopt can check what the run trained with.
    record = {"wall_time": wall, "steps": steps, "config": m.config.to_dict()}
    write_json_atomic(folder / "done.json", record)  # last: done.json marks a finished run


def read_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) if r[k] != "" else math.nan for r in rows]) for k in rows[0]}


def test_summary(evals: dict[str, np.ndarray], threshold: float) -> tuple[float, float, int | None]:
    """Best test return, final (mean of the last 3 tests) and the env step of the first test
    at or above ``threshold`` (None if none)."""
    tr = evals["test_return"]
    first = next(
        (int(t) for t, r in zip(evals["total_steps"], tr, strict=True) if r >= threshold), None
    )
    return float(np.max(tr)), float(np.mean(tr[-3:])), first


def summarise(
    env_id: str, folder: Path, algo: str, variants: list[str], seeds: list[int]
) -> list[dict[str, Any]]:
    """Per (variant, seed): best and final (mean of the last 3) test return, learned, collapsed.

    learned: best >= the task's threshold; collapsed: learned, and the final normalised score
    (R - random) / (best - random) is below 0.8 (final not within 20% of the best); that
    ratio is NaN when the best is no better than the random policy."""
    info = TASKS.get(env_id) or task_info(env_id)
    rows = []
    for v in variants:
        for s in seeds:
            d = folder / algo / v / f"seed{s}"
            if not (d / "done.json").exists():
                continue
            ev = read_csv(d / "evals.csv")
            ep = read_csv(d / "episodes.csv")
            best, final, first = test_summary(ev, info["learned"])
            learned = best >= info["learned"]
            # Undefined (NaN) unless the best beat the random policy by a margin.
            gain = best - info["random"]
            margin = 1e-3 * abs(info["random"])
            ratio = (final - info["random"]) / gain if gain > margin else math.nan
            late = ep["total_steps"] > ep["total_steps"][-1] / 2
            rows.append(
                {
                    "algo": algo,
                    "variant": v,
                    "seed": s,
                    "best": round(best, 1),
                    "final": round(final, 1),
                    "learned": bool(learned),
                    "first_learned_step": first,
                    "collapsed": bool(learned and ratio < 0.8),
                    "final_over_best": round(float(ratio), 3),
                    "max_diag_p_late": round(
                        float(np.nanmax(ep.get("max_diag_p", [math.nan])[late]))
                        if "max_diag_p" in ep
                        else math.nan,
                        1,
                    ),
                    "td_abs_late": round(float(np.nanmean(ep["td_abs"][late])), 3),
                    "wall_time": round(json.loads((d / "done.json").read_text())["wall_time"], 1),
                }
            )
    return rows


def plot(env_id: str, folder: Path, algo: str, variants: list[str], seeds: list[int]) -> None:
    """One figure per variant: test return and the episode metrics, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for v in variants:
        panels = ["test_return", *[m for m in METRICS if m != "return"]]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8))
        for s in seeds:
            d = folder / algo / v / f"seed{s}"
            if not (d / "done.json").exists():
                continue
            ev, ep = read_csv(d / "evals.csv"), read_csv(d / "episodes.csv")
            for ax, p in zip(axes, panels, strict=True):
                if p == "test_return":
                    ax.plot(ev["total_steps"], ev["test_return"], f"C{s}", label=f"seed {s}")
                elif p in ep and not np.all(np.isnan(ep[p])):
                    ax.plot(ep["total_steps"], ep[p], f"C{s}", label=f"seed {s}")
                ax.set_title(p, fontsize=9)
                if p in ("q_loss", "max_diag_p", "mean_diag_p", "td_abs"):
                    ax.set_yscale("log")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{algo.upper()} {env_id} {v}", fontsize=10)
        fig.tight_layout()
        fig.savefig(folder / f"{algo}_{v}.png", dpi=80)
        plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--env", default="Pendulum-v1")
    ap.add_argument("--algo", default="naf", choices=("naf", "ddpg"))
    ap.add_argument("--steps", type=int, default=12_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variant", action="append", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--eval-interval", type=int, default=5, help="episodes between tests")
    ap.add_argument("--eval-episodes", type=int, default=5, help="episodes of each test")
    a = ap.parse_args(argv)
    variants = dict(parse_variant(t) for t in (a.variant or ["default"]))
    folder = a.out or Path(__file__).parent / "results" / "reliability" / a.env
    if not a.summary_only:
        for name, ov in variants.items():
            for s in a.seeds:
                d = folder / a.algo / name / f"seed{s}"
                if (d / "done.json").exists():
                    continue
                print(f"{a.algo} {a.env} {name} seed {s} ...", flush=True, file=sys.stderr)
                run_one(a.algo, a.env, s, a.steps, ov, d, (a.eval_interval, a.eval_episodes))
    rows = summarise(a.env, folder, a.algo, list(variants), a.seeds)
    for r in rows:
        print(r)
    old = []
    if (folder / "summary.json").exists():
        old = [
            r
            for r in json.loads((folder / "summary.json").read_text())
            if not (r["algo"] == a.algo and r["variant"] in variants)
        ]
    allrows = old + rows
    write_json_atomic(folder / "summary.json", allrows)
    write_rows_atomic(folder / "summary.csv", allrows, list(allrows[0]))
    plot(a.env, folder, a.algo, list(variants), a.seeds)


if __name__ == "__main__":
    main()
