"""Section 6.3: imagination rollouts with fitted models (Figure 2b/2c), reproduced.

Model-free NAF against NAF + imagination rollouts (Algorithm 2) with time-varying linear
models, with a global neural-network model and with the true simulator, on the single-target
reacher (l = 10) and gripper (l = 5), several seeds each. Reports learning curves (PNG) and
"episodes to reach within 5% of model-free NAF's best test reward" with the spread over seeds.

    python bench/imagination.py run --task reacher --variant linear --seed 0
    python bench/imagination.py all --tasks reacher --seeds 0 1 2     # every variant
    python bench/imagination.py report                                # table + figures

Each run is a normal nafrl run folder under bench/results/imagination/<task>/<variant>-s<seed>
(resumable with the same command); ``report`` writes summary.json, summary.md and PNGs there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

import nafrl
from nafrl.experiments.metrics import episodes_to_reach, threshold
from nafrl.experiments.plots import read_csv

ROOT = Path(__file__).resolve().parent / "results" / "imagination"
TASKS = {
    # id, imagination length l, episodes, switch-off episode (0: never)
    "reacher": ("nafrl/ReacherSingle-v0", 10, 150, 0),  # model-based runs: --episodes 60
    "gripper": ("nafrl/GripperSingle-v0", 5, 200, 130),
}
VARIANTS = ("model-free", "linear", "neural", "true")
Task = Literal["reacher", "gripper"]
# A variant is model-free, linear, neural or true, optionally with "-l<N>" to override the
# imagination length (e.g. "linear-l3").
Variant = str

COMMON = dict(eval_interval=5, eval_episodes=3, checkpoint_interval=5, learning_starts=500)


def run_one(task: Task, variant: Variant, seed: int, episodes: int = 0) -> Path:
    """Train one variant for ``episodes`` episodes (resuming a stopped run)."""
    env_id, length, default_episodes, off_after = TASKS[task]
    episodes = episodes or default_episodes
    kind, _, l_override = variant.partition("-l")
    if kind not in VARIANTS:
        raise SystemExit(
            f"unknown variant {variant!r}; accepted: {', '.join(VARIANTS)} "
            "with an optional -l<N> suffix"
        )
    length = int(l_override) if l_override else length
    run_dir = ROOT / task / f"{variant}-s{seed}"
    ck = run_dir / "checkpoint.npz"
    if ck.exists():
        model = nafrl.NAF.load(ck, run_dir=run_dir)
        model.logger.truncate_after(model.num_episodes)
    else:
        kw = dict(COMMON)
        if kind != "model-free":
            kw.update(model=kind, imagination_length=length, imagination_off_after=off_after)
        model = nafrl.NAF(env_id, seed=seed, run_dir=run_dir, **kw)
        model.logger.write_config(
            {
                "task": task,
                "variant": variant,
                "seed": seed,
                "env": env_id,
                "config": model.config.to_dict(),
            }
        )
    T = model.env.unwrapped.horizon
    remaining = episodes * T - model.num_timesteps
    t0 = time.perf_counter()
    if remaining > 0:
        model.learn(remaining, progress_bar=True)
        model.save(ck)
    print(
        f"{task}/{variant}-s{seed}: {model.num_episodes} episodes in "
        f"{time.perf_counter() - t0:.0f} s; time split {model.time_split()}"
    )
    model.close()
    return run_dir


def run_all(
    tasks: tuple[Task, ...] = ("reacher", "gripper"),
    seeds: tuple[int, ...] = (0, 1, 2),
    variants: tuple[Variant, ...] = VARIANTS,
    episodes: int = 0,
) -> None:
    """Every (task, variant, seed), seeds outermost so partial results cover all variants."""
    for task in tasks:
        for seed in seeds:
            for variant in variants:
                run_one(task, variant, seed, episodes)
    report(tasks)


def report(tasks: tuple[Task, ...] = ("reacher", "gripper")) -> None:
    """Summary table (episodes to within 5% of model-free NAF's best) and learning curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary: dict = {}
    lines = [
        "| task | variant | seeds | best test reward (mean ± sd) | episodes to within 5% of "
        "model-free best (median [min, max]) | speed-up vs model-free |",
        "|---|---|---|---|---|---|",
    ]
    for task in tasks:
        found = {d.name.rsplit("-s", 1)[0] for d in (ROOT / task).glob("*-s*") if d.is_dir()}
        variants = [v for v in VARIANTS if v in found] + sorted(found - set(VARIANTS))
        runs = {v: sorted((ROOT / task).glob(f"{v}-s*")) for v in variants}
        evals = {
            v: [read_csv(r / "evals.csv") for r in rs if (r / "evals.csv").exists()]
            for v, rs in runs.items()
        }
        if not evals["model-free"]:
            continue
        mf_best = float(np.mean([np.max(e["test_return"]) for e in evals["model-free"]]))
        level = threshold(mf_best)
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        summary[task] = {"model_free_best": mf_best, "level": level}
        mf_median = np.nan
        for i, v in enumerate(variants):
            if not evals[v]:
                continue
            eps = [episodes_to_reach(e["episode"], e["test_return"], level) for e in evals[v]]
            best = [float(np.max(e["test_return"])) for e in evals[v]]
            finite = [x for x in eps if np.isfinite(x)]
            med = float(np.median(eps)) if len(finite) == len(eps) else float("nan")
            if v == "model-free":
                mf_median = med
            summary[task][v] = {
                "episodes_to_level": eps,
                "best": best,
                "median": med,
                "seeds": len(eps),
            }
            speed = mf_median / med if np.isfinite(med) and np.isfinite(mf_median) else np.nan
            lines.append(
                f"| {task} | {v} | {len(eps)} | {np.mean(best):.3g} ± {np.std(best):.2g} | "
                f"{med:.0f} [{np.nanmin(eps) if finite else np.nan:.0f}, "
                f"{np.nanmax(eps) if finite else np.nan:.0f}] (not reached: "
                f"{len(eps) - len(finite)}) | {speed:.2f}x |"
            )
            n = min(len(e["episode"]) for e in evals[v])
            x = evals[v][0]["episode"][:n]
            ys = np.stack([e["test_return"][:n] for e in evals[v]])
            ax.plot(x, ys.mean(0), color=f"C{i}", label=f"{v} ({len(ys)} seeds)")
            ax.fill_between(x, ys.min(0), ys.max(0), color=f"C{i}", alpha=0.15)
        ax.axhline(level, color="k", ls=":", lw=1, label="5% of model-free best")
        ax.set_xlabel("episodes")
        ax.set_ylabel("test reward")
        ax.set_title(f"NAF with imagination rollouts: {TASKS[task][0]}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(ROOT / f"{task}.png")
        plt.close(fig)
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / "summary.json").write_text(json.dumps(summary, indent=2))
    (ROOT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    tyro.extras.subcommand_cli_from_dict({"run": run_one, "all": run_all, "report": report})
