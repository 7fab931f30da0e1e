"""Section 6.3: imagination rollouts with fitted models (Figure 2b/2c), reproduced.

Model-free NAF against NAF + imagination rollouts (Algorithm 2) with time-varying linear
models, with a global neural-network model and with the true simulator, on the single-target
reacher (l = 10) and gripper (l = 5), several seeds each. Reports learning curves (PNG) and
"episodes to reach within 5% of model-free NAF's best test reward" with the spread over seeds.

    python bench/imagination.py run --task reacher --variant linear --seed 0
    python bench/imagination.py all --tasks reacher --seeds 0 1 2     # every variant
    python bench/imagination.py report                                # table + figures

Each run is a normal nafrl run folder (the layout of :mod:`nafrl.runs`) under
bench/results/imagination/<task>/<variant>-s<seed>, resumable with the same command;
``report`` writes summary.json, summary.md and PNGs there. Folders written before
:mod:`nafrl.runs` existed have another config.json layout: ``report`` reads them, ``run``
refuses to resume them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

from nafrl.config import make_config
from nafrl.experiments.metrics import episodes_to_reach, threshold
from nafrl.experiments.plots import read_csv
from nafrl.runs import RunSpec, run

ROOT = Path(__file__).resolve().parent / "results" / "imagination"
TASKS = {
    # id, imagination length l, episodes, switch-off episode (0: never)
    "reacher": ("nafrl/ReacherSingle-v1", 10, 150, 0),  # model-based runs: --episodes 60
    "gripper": ("nafrl/GripperSingle-v1", 5, 200, 130),
}
VARIANTS = ("model-free", "linear", "neural", "true")
Task = Literal["reacher", "gripper"]
# A variant is model-free, linear, neural or true, optionally followed by "-l<N>" to override
# the imagination length and "-noproj" to keep imagined observations unprojected (the
# ablation of Config.project_imagined), e.g. "linear-l3" or "linear-noproj".
Variant = str


def parse_variant(variant: Variant, default_length: int) -> tuple[str, int, bool]:
    """-> (model kind, imagination length, project imagined observations)."""
    kind, *opts = variant.split("-") if variant != "model-free" else ("model-free",)
    length, project = default_length, True
    for o in opts:
        if o == "noproj":
            project = False
        elif o.startswith("l") and o[1:].isdigit():
            length = int(o[1:])
        else:
            kind = "?"
    if kind not in VARIANTS:
        raise SystemExit(
            f"unknown variant {variant!r}; accepted: {', '.join(VARIANTS)} with optional "
            "-l<N> and -noproj suffixes"
        )
    return kind, length, project


# tau = 0.001: the target rate these results were measured with (the default until issue 13).
COMMON = dict(
    eval_interval=5, eval_episodes=3, checkpoint_interval=5, learning_starts=500, tau=0.001
)


def run_one(task: Task, variant: Variant, seed: int, episodes: int = 0) -> Path:
    """Train one variant for ``episodes`` episodes (resuming a stopped run) through the one
    run-lifecycle function, :func:`nafrl.runs.run`."""
    env_id, length, default_episodes, off_after = TASKS[task]
    episodes = episodes or default_episodes
    kind, length, project = parse_variant(variant, length)
    run_dir = ROOT / task / f"{variant}-s{seed}"
    kw = dict(COMMON)
    if kind != "model-free":
        kw.update(
            model=kind,
            imagination_length=length,
            imagination_off_after=off_after,
            project_imagined=project,
        )
    spec = RunSpec("naf", env_id, seed, {"episodes": episodes}, make_config(**kw))
    t0 = time.perf_counter()
    result = run(spec, run_dir, progress_bar=True)
    print(
        f"{task}/{variant}-s{seed}: {result.num_episodes} episodes "
        f"({'already done' if result.skipped else f'{time.perf_counter() - t0:.0f} s'})"
    )
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
    """Summary table and learning curves.

    Seeds are paired: for seed s the level is 5% below model-free NAF's best test reward with
    seed s (same initial network, same task randomness), and every variant with seed s is
    timed to that level. A run that never reaches it counts as "> its last episode", so the
    speed-up is then a bound.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary: dict = {}
    lines = [
        "| task | variant | seeds | best test reward (mean ± sd) | episodes to within 5% of "
        "model-free best, per seed | speed-up vs model-free, per seed (median) |",
        "|---|---|---|---|---|---|",
    ]
    for task in tasks:
        found = {d.name.rsplit("-s", 1)[0] for d in (ROOT / task).glob("*-s*") if d.is_dir()}
        if "model-free" not in found:
            continue
        variants = [v for v in VARIANTS if v in found] + sorted(found - set(VARIANTS))
        evals = {
            v: {
                int(r.name.rsplit("-s", 1)[1]): read_csv(r / "evals.csv")
                for r in sorted((ROOT / task).glob(f"{v}-s*"))
                if (r / "evals.csv").exists()
            }
            for v in variants
        }
        mf = evals["model-free"]
        levels = {s: threshold(float(np.max(e["test_return"]))) for s, e in mf.items()}
        mf_eps = {
            s: episodes_to_reach(e["episode"], e["test_return"], levels[s]) for s, e in mf.items()
        }
        summary[task] = {"levels": levels}
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for i, v in enumerate(variants):
            runs = {s: e for s, e in evals[v].items() if s in levels}
            if not runs:
                continue
            cells, speeds, per_seed = [], [], {}
            for s, e in sorted(runs.items()):
                n = episodes_to_reach(e["episode"], e["test_return"], levels[s])
                last = float(e["episode"][-1])
                per_seed[s] = {
                    "episodes": n,
                    "last_episode": last,
                    "best": float(np.max(e["test_return"])),
                }
                if np.isfinite(n):
                    cells.append(f"s{s}: {n:.0f}")
                    speeds.append(mf_eps[s] / n)
                else:
                    cells.append(f"s{s}: >{last:.0f}")
                    speeds.append(mf_eps[s] / last)  # an upper bound on the speed-up
            best = [d["best"] for d in per_seed.values()]
            reached = all(np.isfinite(d["episodes"]) for d in per_seed.values())
            med = float(np.median(speeds))
            summary[task][v] = {
                "per_seed": per_seed,
                "speedup_median": med,
                "speedup_is_bound": not reached,
            }
            lines.append(
                f"| {task} | {v} | {len(runs)} | {np.mean(best):.3g} ± {np.std(best):.2g} | "
                f"{', '.join(cells)} | {'<' if not reached else ''}{med:.2f}x "
                f"[{min(speeds):.2f}, {max(speeds):.2f}] |"
            )
            n = min(len(e["episode"]) for e in runs.values())
            x = next(iter(runs.values()))["episode"][:n]
            ys = np.stack([e["test_return"][:n] for e in runs.values()])
            ax.plot(x, ys.mean(0), color=f"C{i}", label=f"{v} ({len(ys)} seeds)")
            ax.fill_between(x, ys.min(0), ys.max(0), color=f"C{i}", alpha=0.15)
        ax.axhline(
            float(np.mean(list(levels.values()))),
            color="k",
            ls=":",
            lw=1,
            label="5% below model-free best (mean over seeds)",
        )
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
