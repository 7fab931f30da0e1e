"""Sweep status and reports, computed from the sweep folder alone (so they can always be rebuilt).

A sweep folder holds ``sweep.json`` (the manifest: ``{"name", "spec", "runs": [{"id", "algo",
"task", "seed", "point", "budget", "config"}]}``) and one run folder per run under
``runs/<id>/`` (``config.json``, ``episodes.csv``, ``evals.csv``, ``checkpoint.npz``, and
``done.json`` written last, or ``failed.json`` with the error).

- :func:`sweep_status` classifies every run of the manifest as done, partial, failed or pending;
  :func:`format_status` prints it (``nafrl sweep status DIR``).
- :func:`write_report` writes ``report.md``, ``report.json`` and ``figures/*.png``
  (``nafrl sweep report DIR``): per task and algorithm variant the best grid point with the
  paper's metrics (Table 1: best test reward, episodes to reach within 5% of it) and 95%
  bootstrap intervals over seeds; NAF against DDPG, and each variant against its
  baseline (``BASELINE_VARIANTS``), as a probability of improvement; the interquartile mean
  of normalised scores; learning curves and a performance profile; when a variant is named
  ``model-free`` (section 6.3), the speed-up of the other variants over it in episodes to a
  reference level. The statistics are in :mod:`nafrl.experiments.stats` (Agarwal et al.
  2021).

Runs that are not finished (partial, failed, pending) or finished without any evaluation are
listed in the report with their state; they never silently vanish from it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nafrl.errors import NafrlError
from nafrl.experiments import stats
from nafrl.experiments.metrics import best_and_episodes, episodes_to_reach
from nafrl.experiments.paper import TABLE1, TABLE2, domain_of
from nafrl.logger import atomic_write_text

RunState = Literal["done", "partial", "failed", "pending"]
STATES: tuple[RunState, ...] = ("done", "partial", "failed", "pending")

VARIANT_FIELDS: tuple[str, ...] = (
    "model",
    "imagination_length",
    "ilqg_fraction",
    "planner",
    "exploration",
)
"""Config fields that make a *variant* of an algorithm (a different method, not a different
hyperparameter): runs that differ in these are reported as separate lines and never compete for
the same 'best grid point'."""

# Values of the variant fields that leave the label plain ("naf", "ddpg").
_VARIANT_DEFAULTS: dict[str, Any] = {
    "model": "none",
    "imagination_length": 0,
    "ilqg_fraction": 0.0,
    "exploration": "ou",
}

PROTOCOLS: tuple[str, ...] = ("table1", "table2", "section63", "fig3")

VARIANT_KEY = "variant"
"""Key of a run's grid point that names its variant (the sweep spec's ``variants`` table);
when present it is the variant's name in the report instead of one made from the config."""


class SweepFolderError(NafrlError, ValueError):
    """A sweep folder that cannot be read; the message names the file and what is wrong."""


# ----------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class RunStatus:
    """One run of the manifest and its state.

    ``detail`` is the error line of a failed run, the progress of a partial run
    (``"120/300 episodes, checkpoint"``), empty otherwise."""

    id: str
    algo: str
    task: str
    seed: int
    point: dict[str, Any]
    state: RunState
    detail: str
    folder: Path


@dataclass(frozen=True)
class Status:
    """State of every run of a sweep, in manifest order.

    ``unlisted`` names folders under ``runs/`` that the manifest does not list (left over from
    an edited spec); they are shown, never counted."""

    sweep_dir: Path
    name: str
    runs: tuple[RunStatus, ...]
    unlisted: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Number of runs in each state (every state present, zeros included)."""
        out: dict[str, int] = dict.fromkeys(STATES, 0)
        for r in self.runs:
            out[r.state] += 1
        return out

    def of(self, state: RunState) -> list[RunStatus]:
        """The runs in one state."""
        return [r for r in self.runs if r.state == state]


def load_manifest(sweep_dir: str | Path) -> dict[str, Any]:
    """Read and check ``DIR/sweep.json``; one clear :class:`SweepFolderError` if it is unusable."""
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise SweepFolderError(
            f"{sweep_dir} is not a sweep folder: no sweep.json (made by `nafrl sweep run`)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SweepFolderError(f"{path} is not readable JSON: {e}") from e
    runs = manifest.get("runs") if isinstance(manifest, dict) else None
    if not isinstance(runs, list):
        raise SweepFolderError(f"{path} has no 'runs' list")
    for i, run in enumerate(runs):
        missing = [
            k for k in ("id", "algo", "task", "seed") if not isinstance(run, dict) or k not in run
        ]
        if missing:
            raise SweepFolderError(
                f"{path}: run #{i} lacks {', '.join(missing)} "
                "(each run needs id, algo, task, seed; point, budget, config optional)"
            )
    ids = [str(r["id"]) for r in runs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SweepFolderError(f"{path}: run ids are not unique: {', '.join(dup)}")
    return manifest


def _csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _float(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _progress(folder: Path, budget: dict[str, Any]) -> str:
    rows = _csv_rows(folder / "episodes.csv")
    parts: list[str] = []
    if "episodes" in budget:
        parts.append(f"{len(rows)}/{budget['episodes']} episodes")
    else:
        steps = int(_float(rows[-1].get("total_steps"))) if rows else 0
        parts.append(f"{len(rows)} episodes")
        if "steps" in budget:
            parts.append(f"{steps}/{budget['steps']} steps")
    evals = _csv_rows(folder / "evals.csv")
    if evals:
        parts.append(f"{len(evals)} evaluations")
    if (folder / "checkpoint.npz").exists():
        parts.append("checkpoint")
    return ", ".join(parts)


def _failure_line(folder: Path) -> str:
    try:
        info = json.loads((folder / "failed.json").read_text())
        err = str(info.get("error", "")).strip() or "(no error message)"
    except (OSError, ValueError, AttributeError) as e:
        return f"failed.json unreadable: {e}"
    return err.splitlines()[0] if err else err


def _classify(folder: Path, budget: dict[str, Any]) -> tuple[RunState, str]:
    # done.json is written last and atomically, so it wins over anything else in the folder.
    if (folder / "done.json").exists():
        return "done", ""
    if (folder / "failed.json").exists():
        return "failed", _failure_line(folder)
    if (folder / "checkpoint.npz").exists() or _csv_rows(folder / "episodes.csv"):
        return "partial", _progress(folder, budget)
    return "pending", ""


def sweep_status(sweep_dir: str | Path) -> Status:
    """Classify every run of ``DIR/sweep.json``.

    - done: ``done.json`` exists (the run finished; written last).
    - failed: ``failed.json`` exists and no ``done.json``; detail = its one-line error.
    - partial: a checkpoint or at least one ``episodes.csv`` row, but neither marker; detail =
      progress against the budget (a rerun of the sweep resumes it).
    - pending: no folder, or a folder with nothing trained yet.
    """
    sweep_dir = Path(sweep_dir)
    manifest = load_manifest(sweep_dir)
    runs_dir = sweep_dir / "runs"
    out: list[RunStatus] = []
    for run in manifest["runs"]:
        folder = runs_dir / str(run["id"])
        state, detail = _classify(folder, dict(run.get("budget") or {}))
        out.append(
            RunStatus(
                id=str(run["id"]),
                algo=str(run["algo"]),
                task=str(run["task"]),
                seed=int(run["seed"]),
                point=dict(run.get("point") or {}),
                state=state,
                detail=detail,
                folder=folder,
            )
        )
    listed = {r.id for r in out}
    unlisted: tuple[str, ...] = ()
    if runs_dir.is_dir():
        unlisted = tuple(
            sorted(p.name for p in runs_dir.iterdir() if p.is_dir() and p.name not in listed)
        )
    return Status(sweep_dir, str(manifest.get("name", sweep_dir.name)), tuple(out), unlisted)


def _point_str(point: dict[str, Any]) -> str:
    # A named variant is part of the label already, not a hyperparameter of the grid.
    items = sorted((k, v) for k, v in point.items() if k != VARIANT_KEY)
    return ", ".join(f"{k}={v}" for k, v in items) or "(fixed config)"


def format_status(status: Status, *, max_pending: int = 10) -> str:
    """Human-readable status: totals, a line per task and algorithm, every failed run with its
    error, every partial run with its progress, and the first ``max_pending`` pending runs."""
    c = status.counts()
    lines = [
        f"sweep {status.name!r} ({status.sweep_dir}): {len(status.runs)} runs: "
        + ", ".join(f"{c[s]} {s}" for s in STATES)
    ]
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for r in status.runs:
        groups.setdefault((r.task, r.algo), dict.fromkeys(STATES, 0))[r.state] += 1
    if groups:
        w = max(len(t) for t, _ in groups)
        for (task, algo), g in groups.items():
            lines.append(f"  {task:<{w}}  {algo:<6} " + "  ".join(f"{g[s]} {s}" for s in STATES))

    def who(r: RunStatus) -> str:
        return f"{r.id} ({r.algo}, {r.task}, seed {r.seed}, {_point_str(r.point)})"

    sections: tuple[tuple[RunState, str], ...] = (
        ("failed", "failed"),
        ("partial", "partial (resumed by a rerun)"),
    )
    for state, title in sections:
        runs = status.of(state)
        if runs:
            lines.append(f"{title}:")
            lines.extend(f"  {who(r)}: {r.detail}" for r in runs)
    pending = status.of("pending")
    if pending:
        lines.append("pending:")
        lines.extend(f"  {who(r)}" for r in pending[:max_pending])
        if len(pending) > max_pending:
            lines.append(f"  ... and {len(pending) - max_pending} more")
    if status.unlisted:
        lines.append(
            f"folders under runs/ not in sweep.json (ignored): {', '.join(status.unlisted)}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------- variants


def _full_config(run: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The run's Config dict: the manifest's, else the run folder's config.json, over the
    defaults (so an absent field means its default)."""
    from nafrl.config import Config

    cfg: dict[str, Any] = Config().to_dict()
    given = run.get("config")
    if not isinstance(given, dict):
        try:
            given = json.loads((folder / "config.json").read_text()).get("config")
        except (OSError, ValueError, AttributeError):
            given = None
    if isinstance(given, dict):
        cfg.update(given)
    return cfg


def variant_of(config: dict[str, Any], fields: Sequence[str] = VARIANT_FIELDS) -> str:
    """A short name for the method a config runs, from its :data:`VARIANT_FIELDS`: ``""`` for
    plain model-free NAF/DDPG with OU noise, else e.g. ``"model=true, l=10, mpc=0.5"``
    (l = imagination rollout length, then the fraction of iLQG/MPC-driven episodes)."""
    parts: list[str] = []
    if "model" in fields and config.get("model", "none") != "none":
        parts.append(f"model={config['model']}")
    if "imagination_length" in fields and int(config.get("imagination_length", 0) or 0) > 0:
        parts.append(f"l={int(config['imagination_length'])}")
    if "ilqg_fraction" in fields and float(config.get("ilqg_fraction", 0.0) or 0.0) > 0:
        planner = config.get("planner", "ilqg") if "planner" in fields else "ilqg"
        parts.append(f"{planner}={float(config['ilqg_fraction']):g}")
    if "exploration" in fields and config.get("exploration", "ou") != "ou":
        parts.append(f"explore={config['exploration']}")
    for f in fields:
        if f not in _VARIANT_DEFAULTS and f != "planner" and f in config:
            parts.append(f"{f}={config[f]}")
    return ", ".join(parts)


def label_of(algo: str, variant: str) -> str:
    """``"naf"`` or ``"naf (model=true, l=10)"``."""
    return f"{algo} ({variant})" if variant else algo


def table2_column(config: dict[str, Any]) -> str | None:
    """The Table 2 column a NAF config reproduces (None if none): no model, 0.5 MPC episodes,
    imagination rollouts (ImR), ImR + 0.5 MPC, ImR + 1 MPC."""
    imr = int(config.get("imagination_length", 0) or 0) > 0
    frac = float(config.get("ilqg_fraction", 0.0) or 0.0)
    if config.get("exploration", "ou") != "ou":
        return None
    if not imr and frac == 0.0:
        return "none"
    if config.get("model", "none") == "none":
        return None
    column = {
        (False, 0.5): "mpc0.5",
        (True, 0.0): "imr",
        (True, 0.5): "imr+mpc0.5",
        (True, 1.0): "imr+mpc1",
    }
    return column.get((imr, frac))


def protocol_of(manifest: dict[str, Any]) -> str | None:
    """The paper protocol a sweep runs (``"table1"``, ``"table2"``, ...), or None for a user's
    spec: the manifest's ``protocol``, else the spec's ``protocol``/``paper``, else the sweep's
    name or its first spec's name when it is a protocol name or starts with one and a separator
    (``"table1-laptop"``)."""
    given = manifest.get("spec")
    spec: dict[str, Any] = given if isinstance(given, dict) else {}
    for v in (manifest.get("protocol"), spec.get("protocol"), spec.get("paper")):
        if isinstance(v, str) and v.lower() in PROTOCOLS:
            return v.lower()
    names = [manifest.get("name"), spec.get("name")]
    specs = spec.get("specs")
    if isinstance(specs, list) and specs and isinstance(specs[0], dict):
        names.append(specs[0].get("name"))
    for v in names:
        if not isinstance(v, str):
            continue
        low = v.lower()
        for p in PROTOCOLS:
            if low == p or (low.startswith(p) and low[len(p) : len(p) + 1] in ("-", "_", "+", " ")):
                return p
    return None


def paper_reference(
    protocol: str | None, task: str, algo: str, config: dict[str, Any]
) -> dict[str, Any] | None:
    """The paper's (best test reward, episodes to 5%) for this task/algo/variant, or None.

    Table 2 for NAF runs of the ``table2`` protocol (by column, :func:`table2_column` of the
    config); otherwise Table 1 for plain
    model-free NAF or DDPG (see :func:`variant_of`) on the paper's ten domains (not their
    single-target variants). Table 1 is the best over the paper's hyperparameter grid, so it
    is comparable to our best grid point only when the sweep covers that grid and budget."""
    domain = domain_of(task)
    if domain is None:
        return None
    if protocol == "table2":
        col = table2_column(config) if algo == "naf" else None
        if col is None or domain not in TABLE2:
            return None
        best, eps = TABLE2[domain][col]
        return {"source": f"Table 2 ({col})", "domain": domain, "best": best, "episodes": eps}
    if "single" in task.lower():
        return None  # the single-target variants (section 6.3) are not Table 1's tasks
    if algo in ("naf", "ddpg") and domain in TABLE1 and not variant_of(config):
        row = TABLE1[domain]
        best, eps = (
            (row.naf_best, row.naf_episodes)
            if algo == "naf"
            else (row.ddpg_best, row.ddpg_episodes)
        )
        return {"source": "Table 1", "domain": domain, "best": best, "episodes": eps}
    return None


# ---------------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """One run's numbers: its evaluations and the paper's two metrics."""

    id: str
    seed: int
    state: RunState
    episodes: np.ndarray
    test_returns: np.ndarray
    best: float
    episodes_to_5pct: float
    budget_episodes: float = math.nan
    """The run's episode budget (NaN for a step budget): where a seed that never reaches the
    speed-up level is censored."""


@dataclass
class PointResult:
    """One grid point of one (task, algo, variant): its finished runs and the others."""

    point: dict[str, Any]
    results: list[RunResult] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    n_runs: int = 0

    @property
    def mean_best(self) -> float:
        """Mean over seeds of the best test reward (NaN with no finished run)."""
        return float(np.mean([r.best for r in self.results])) if self.results else math.nan


@dataclass
class Cell:
    """One line of the report: a task and an algorithm variant, with all its grid points."""

    task: str
    algo: str
    variant: str
    config: dict[str, Any]
    points: dict[str, PointResult] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Algorithm and variant, as shown in tables and legends."""
        return label_of(self.algo, self.variant)

    def best_point(self) -> PointResult | None:
        """The grid point of highest mean (over seeds) best test reward; first in manifest order
        on ties; None if no point has a finished run."""
        scored = [p for p in self.points.values() if p.results]
        return max(scored, key=lambda p: p.mean_best) if scored else None


def _read_evals(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = _csv_rows(folder / "evals.csv")
    ep = np.array([_float(r.get("episode")) for r in rows])
    ret = np.array([_float(r.get("test_return")) for r in rows])
    ok = np.isfinite(ep) & np.isfinite(ret)
    order = np.argsort(ep[ok], kind="stable")
    return ep[ok][order], ret[ok][order]


def _collect(
    manifest: dict[str, Any], status: Status, include_partial: bool, fields: Sequence[str]
) -> tuple[dict[tuple[str, str, str], Cell], list[dict[str, Any]]]:
    cells: dict[tuple[str, str, str], Cell] = {}
    excluded: list[dict[str, Any]] = []
    for run, st in zip(manifest["runs"], status.runs, strict=True):
        cfg = _full_config(run, st.folder)
        named = st.point.get(VARIANT_KEY)
        variant = str(named) if named is not None else variant_of(cfg, fields)
        cell = cells.setdefault((st.task, st.algo, variant), Cell(st.task, st.algo, variant, cfg))
        key = json.dumps(st.point, sort_keys=True, default=str)
        pr = cell.points.setdefault(key, PointResult(st.point))
        pr.n_runs += 1
        info = {
            "id": st.id,
            "algo": st.algo,
            "task": st.task,
            "seed": st.seed,
            "label": cell.label,
            "point": st.point,
            "state": st.state,
            "detail": st.detail,
        }
        usable = st.state == "done" or (include_partial and st.state == "partial")
        if usable:
            ep, ret = _read_evals(st.folder)
            if ret.size:
                best, n5 = best_and_episodes(ep, ret)
                budget = _float(str(dict(run.get("budget") or {}).get("episodes", "")))
                pr.results.append(RunResult(st.id, st.seed, st.state, ep, ret, best, n5, budget))
                continue
            info["detail"] = (
                info["detail"] + "; " if info["detail"] else ""
            ) + "no finite evaluation in evals.csv"
        pr.excluded.append(info)
        excluded.append(info)
    return cells, excluded


MIN_EVAL_EPISODES = 10
"""Test episodes per evaluation below which the report warns (issue 11: at least 10 for
sweeps, so the test reward of one evaluation is a mean over enough episodes)."""


def evaluation_protocol(manifest: dict[str, Any], status: Status) -> dict[str, Any]:
    """Test episodes per periodic evaluation across the runs (``Config.eval_episodes``):
    {"episodes_per_evaluation": {K: number of runs}, "minimum", "below_minimum": [run ids]}."""
    counts: dict[int, int] = {}
    below: list[str] = []
    for run, st in zip(manifest["runs"], status.runs, strict=True):
        # Config.eval_episodes is per periodic evaluation (evals.csv); the run's top-level
        # eval_episodes is its final evaluation only.
        k = int(_full_config(run, st.folder).get("eval_episodes", 0))
        counts[k] = counts.get(k, 0) + 1
        if k < MIN_EVAL_EPISODES:
            below.append(st.id)
    return {
        "episodes_per_evaluation": dict(sorted(counts.items())),
        "minimum": MIN_EVAL_EPISODES,
        "below_minimum": below,
    }


def _random_returns(sweep_dir: Path, manifest: dict[str, Any]) -> dict[str, float]:
    measured: dict[str, float] = {}
    if isinstance(manifest.get("random_returns"), dict):
        measured.update({str(k): float(v) for k, v in manifest["random_returns"].items()})
    path = sweep_dir / "random.json"
    if path.is_file():
        try:
            measured.update({str(k): float(v) for k, v in json.loads(path.read_text()).items()})
        except (ValueError, AttributeError, TypeError) as e:
            raise SweepFolderError(f"{path} must map task ids to random-agent returns: {e}") from e
    return measured


SPEEDUP_BASELINE = "model-free"
"""Name of the variant (the sweep spec's ``variants`` table) that the speed-up table compares
the other variants of its task and algorithm with: section 6.3's fully model-free NAF. Any
sweep with a variant of this name gets the table, not only ``--paper section63``."""

#: The variant every other variant of an algorithm is compared with (probability of
#: improvement), the first present: the plain runs, Table 2's "none" (no model: the name
#: ``--paper table2`` gives it), section 6.3's model-free runs, Figure 3's OU NAF.
BASELINE_VARIANTS: tuple[str, ...] = ("", "none", SPEEDUP_BASELINE, "naf-ou")

SPEEDUP_LEVEL_FRACTION = 0.9
"""Where the speed-up's reference level sits, as a fraction of the way from the model-free
baseline's first evaluation (mean over seeds: about an untrained policy) to its converged best
(mean over seeds of each seed's best test reward). 90%: high enough that reaching it means the
task is learned, not merely started; below 100% because a seed's best is the maximum of noisy
evaluations, so at 100% about half of the baseline's own seeds would never reach the level."""


def _reach(r: RunResult, level: float) -> dict[str, Any]:
    """Episodes for one run to first reach ``level``; censored at its budget if it never does
    (at its last evaluation when unfinished or on a step budget)."""
    n = episodes_to_reach(r.episodes, r.test_returns, level)
    if math.isfinite(n):
        return {"id": r.id, "seed": r.seed, "episodes": n, "reached": True}
    at = float(r.episodes[-1])
    if r.state == "done" and math.isfinite(r.budget_episodes):
        at = max(at, r.budget_episodes)
    return {"id": r.id, "seed": r.seed, "episodes": at, "reached": False}


def _speedup(
    chosen: dict[tuple[str, str], list[RunResult]],
    cell_of: dict[tuple[str, str], Cell],
    best_reward: dict[tuple[str, str], Any],
    kw: dict[str, Any],
) -> list[dict[str, Any]]:
    """Section 6.3's speed-up of each variant over the :data:`SPEEDUP_BASELINE` variant of the
    same task and algorithm (at each line's best grid point): median episodes to reach the
    reference level (:data:`SPEEDUP_LEVEL_FRACTION`) of model-free over the variant's."""
    out: list[dict[str, Any]] = []
    for (task, base_label), base in cell_of.items():
        if base.variant != SPEEDUP_BASELINE:
            continue
        mf = chosen[(task, base_label)]
        first = float(np.mean([r.test_returns[0] for r in mf]))
        top = float(np.mean([r.best for r in mf]))
        entry: dict[str, Any] = {
            "task": task,
            "algo": base.algo,
            "baseline": base_label,
            "fraction": SPEEDUP_LEVEL_FRACTION,
            "first_evaluation": first,
            "baseline_best": top,
            "level": None,
            "variants": [],
            "note": "",
        }
        out.append(entry)
        if not top > first:
            entry["note"] = (
                "the model-free best is not above its first evaluation: no level between them"
            )
            continue
        level = first + SPEEDUP_LEVEL_FRACTION * (top - first)
        entry["level"] = level
        mf_reach = [_reach(r, level) for r in mf]
        base_eps = np.array([p["episodes"] for p in mf_reach])
        base_exact = 2 * sum(p["reached"] for p in mf_reach) > len(mf_reach)
        # The baseline first, then the other variants in manifest order.
        labels = [base_label] + [
            lab
            for (t, lab), c in cell_of.items()
            if t == task and c.algo == base.algo and lab != base_label
        ]
        for label in labels:
            per_seed = [_reach(r, level) for r in chosen[(task, label)]]
            eps = np.array([p["episodes"] for p in per_seed])
            n, k = len(per_seed), sum(p["reached"] for p in per_seed)
            line: dict[str, Any] = {
                "label": label,
                "variant": cell_of[(task, label)].variant,
                "seeds": n,
                "reached": k,
                # A finished censored seed sits at its budget, above every reached seed, so the
                # median is exact while more than half reach the level, else a lower bound.
                "episodes_to_level": {
                    "median": float(np.median(eps)),
                    "ci": stats.bootstrap_ci(eps, np.median, **kw),
                    "exact": 2 * k > n,
                },
                "best_reward": best_reward[(task, label)],
                "per_seed": per_seed,
                "speedup": None,
            }
            if label != base_label:
                bound = {
                    (True, True): "exact",
                    (False, True): "lower bound",  # model-free's median is too small
                    (True, False): "upper bound",  # the variant's median is too small
                    (False, False): "unknown",
                }[(base_exact, 2 * k > n)]
                line["speedup"] = {
                    "value": float(stats.ratio_of_medians(base_eps, eps)),
                    "ci": stats.ratio_of_medians_ci(base_eps, eps, **kw),
                    "bound": bound,
                }
            entry["variants"].append(line)
    return out


# ----------------------------------------------------------------------------------- report


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _fmt(v: float | None, ci: Sequence[float | None] | None = None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    s = f"{v:.4g}"
    if ci is not None:
        lo, hi = ci
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            s += f" [{lo:.4g}, {hi:.4g}]"
    return s


def _cell_text(text: str) -> str:
    """Text safe inside a markdown table cell (an error message may hold '|')."""
    return text.replace("|", "\\|").replace("\n", " ")


def _slug(task: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in task)


def _plot_curves(
    path: Path, task: str, lines: list[tuple[str, list[RunResult], float | None]], seed: int
) -> dict[str, Any]:
    """Mean test reward over seeds with a bootstrap band, one line per algo/variant; curves are
    cut at the shortest run's last evaluation. Returns what was drawn (for report.json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for i, (label, runs, paper_best) in enumerate(lines):
        color = f"C{i % 10}"
        grid, values = stats.curves_on_common_grid([(r.episodes, r.test_returns) for r in runs])
        if grid.size == 0:
            drawn[label] = {
                "seeds": len(runs),
                "episodes": [],
                "note": "evaluations do not overlap",
            }
            continue
        mean, lo, hi = stats.mean_and_band(values, seed=seed)
        ax.plot(grid, mean, color=color, lw=1.8, label=f"{label} (n={len(runs)})")
        if np.all(np.isfinite(lo)):
            ax.fill_between(grid, lo, hi, color=color, alpha=0.2, lw=0)
        if paper_best is not None:
            ax.axhline(paper_best, color=color, ls="--", lw=1.0, alpha=0.7)
        longest = max(float(r.episodes[-1]) for r in runs)
        drawn[label] = {
            "seeds": len(runs),
            "episodes": grid,
            "mean": mean,
            "ci_low": lo,
            "ci_high": hi,
            "cut_at_episode": float(grid[-1]),
            "longest_run_episode": longest,
        }
    ax.set_xlabel("training episodes")
    ax.set_ylabel("test reward")
    dashed = " (dashed: paper's best)" if any(ref is not None for _, _, ref in lines) else ""
    ax.set_title(f"{task}: mean over seeds, 95% bootstrap band{dashed}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return drawn


def _plot_profile(
    path: Path, taus: np.ndarray, profiles: dict[str, tuple[np.ndarray, ...]]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    for i, (label, (frac, lo, hi)) in enumerate(profiles.items()):
        color = f"C{i % 10}"
        ax.plot(taus, frac, color=color, lw=1.8, label=label)
        if np.all(np.isfinite(lo)):
            ax.fill_between(taus, lo, hi, color=color, alpha=0.2, lw=0)
    ax.set_xlabel("normalised score tau (0 = random agent, 1 = best run of the sweep)")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_title("performance profile (95% stratified bootstrap band)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_speedup(path: Path, tables: list[dict[str, Any]], paper_band: bool) -> None:
    """One panel per task: each variant's speed-up over model-free with its bootstrap interval
    (hollow when censoring makes it a bound), on a log axis so 2x and 1/2x sit symmetrically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(
        len(tables),
        1,
        figsize=(6.5, 1.2 + 0.5 * max(len(t["variants"]) for t in tables) * len(tables)),
        dpi=110,
        squeeze=False,
    )
    for ax, t in zip(axes[:, 0], tables, strict=True):
        lines = [v for v in t["variants"] if v["speedup"] is not None]
        for i, v in enumerate(lines):
            sp = v["speedup"]
            lo, hi = sp["ci"]
            exact = sp["bound"] == "exact"
            if math.isfinite(lo) and math.isfinite(hi):
                ax.plot([lo, hi], [i, i], color=f"C{i % 10}", lw=2)
            ax.plot(sp["value"], i, "o", color=f"C{i % 10}", mfc=f"C{i % 10}" if exact else "white")
        ax.set_yticks(range(len(lines)))
        ax.set_yticklabels([f"{v['label']} ({v['reached']}/{v['seeds']})" for v in lines])
        ax.set_ylim(-0.6, len(lines) - 0.4)
        ax.axvline(1.0, color="k", lw=1)
        if paper_band:
            ax.axvspan(2.0, 5.0, color="0.85", zorder=0, label="paper: 2-5x")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log")
        # Plain numbers (2, 3) on the log axis rather than 2x10^0.
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        lo_x, hi_x = ax.get_xlim()
        ax.set_xticks([x for x in (0.25, 0.5, 1, 2, 3, 5, 10, 20) if lo_x <= x <= hi_x])
        ax.set_title(f"{t['task']}: speed-up over {t['baseline']} (95% bootstrap)", fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    axes[-1, 0].set_xlabel(
        "speed-up = median episodes to the level, model-free / variant\n"
        "(hollow: a bound, as half or more seeds were censored)"
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build_report(
    sweep_dir: str | Path,
    *,
    include_partial: bool = False,
    variant_fields: Sequence[str] = VARIANT_FIELDS,
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = stats.SEED,
) -> dict[str, Any]:
    """Every number of the report as a JSON-ready dict (what ``report.json`` holds; figures are
    drawn by :func:`write_report`). See :func:`write_report` for the definitions."""
    sweep_dir = Path(sweep_dir)
    manifest = load_manifest(sweep_dir)
    status = sweep_status(sweep_dir)
    protocol = protocol_of(manifest)
    cells, excluded = _collect(manifest, status, include_partial, variant_fields)
    kw = {"n_resamples": n_resamples, "seed": seed}

    rows: list[dict[str, Any]] = []
    chosen: dict[tuple[str, str], list[RunResult]] = {}  # (task, label) -> runs at best point
    cell_of: dict[tuple[str, str], Cell] = {}
    for (task, algo, _), cell in cells.items():
        bp = cell.best_point()
        ref = paper_reference(protocol, task, algo, cell.config)
        row: dict[str, Any] = {
            "task": task,
            "domain": domain_of(task),
            "algo": algo,
            "variant": cell.variant,
            "label": cell.label,
            "paper": ref,
            "grid": [
                {
                    "point": p.point,
                    "runs": p.n_runs,
                    "finished": len(p.results),
                    "mean_best": p.mean_best,
                }
                for p in cell.points.values()
            ],
        }
        if bp is None:
            row.update(
                best_point=None, seeds=0, runs_at_point=0, best_reward=None, episodes_to_5pct=None
            )
        else:
            best = np.array([r.best for r in bp.results])
            n5 = np.array([r.episodes_to_5pct for r in bp.results])
            row.update(
                best_point=bp.point,
                seeds=len(bp.results),
                runs_at_point=bp.n_runs,
                best_reward={
                    "mean": float(best.mean()),
                    "ci": stats.bootstrap_ci(best, np.mean, **kw),
                },
                episodes_to_5pct={
                    "median": float(np.median(n5)),
                    "ci": stats.bootstrap_ci(n5, np.median, **kw),
                },
                per_seed=[
                    {
                        "id": r.id,
                        "seed": r.seed,
                        "state": r.state,
                        "best": r.best,
                        "episodes_to_5pct": r.episodes_to_5pct,
                        "evaluations": int(r.episodes.size),
                        "last_eval_episode": float(r.episodes[-1]),
                    }
                    for r in bp.results
                ],
                not_in_numbers=[
                    {"id": e["id"], "seed": e["seed"], "state": e["state"], "detail": e["detail"]}
                    for e in bp.excluded
                ],
            )
            chosen[(task, cell.label)] = bp.results
            cell_of[(task, cell.label)] = cell
        rows.append(row)

    # Probability of improvement, NAF (each variant) over DDPG (each variant), per task.
    tasks = list(dict.fromkeys(t for t, _ in chosen))
    pairs: dict[tuple[str, str], list[str]] = {}
    for task in tasks:
        nafs = [lab for (t, lab), c in cell_of.items() if t == task and c.algo == "naf"]
        ddpgs = [lab for (t, lab), c in cell_of.items() if t == task and c.algo == "ddpg"]
        for x in nafs:
            for y in ddpgs:
                pairs.setdefault((x, y), []).append(task)
        # Each variant against its algorithm's baseline (BASELINE_VARIANTS).
        for (t, lab), c in cell_of.items():
            bases = [label_of(c.algo, v) for v in BASELINE_VARIANTS]
            base = next((b for b in bases if (task, b) in cell_of), None)
            if t == task and base is not None and lab != base:
                pairs.setdefault((lab, base), []).append(task)
    poi_rows: list[dict[str, Any]] = []
    poi_aggregate: list[dict[str, Any]] = []
    for (x, y), ptasks in pairs.items():
        strata: list[np.ndarray] = []
        for task in ptasks:
            xs = np.array([r.best for r in chosen[(task, x)]])
            ys = np.array([r.best for r in chosen[(task, y)]])
            strata += [xs, ys]
            poi_rows.append(
                {
                    "task": task,
                    "x": x,
                    "y": y,
                    "n_x": int(xs.size),
                    "n_y": int(ys.size),
                    "p": float(stats.probability_of_improvement(xs, ys)),
                    "ci": stats.probability_of_improvement_ci(xs, ys, **kw),
                }
            )

        def mean_poi(*s: np.ndarray, axis: int = -1) -> np.ndarray:
            return np.mean(
                [
                    stats.probability_of_improvement(a, b)
                    for a, b in zip(s[::2], s[1::2], strict=True)
                ],
                axis=0,
            )

        lo, hi = stats.stratified_bootstrap_ci(strata, mean_poi, **kw)
        poi_aggregate.append(
            {
                "x": x,
                "y": y,
                "tasks": ptasks,
                "p": float(mean_poi(*strata)),
                "ci": (float(lo), float(hi)),
            }
        )

    # Normalised scores: 0 = random agent, 1 = best test reward of any run of the task here.
    measured = _random_returns(sweep_dir, manifest)
    norm: dict[str, dict[str, Any]] = {}
    for task in tasks:
        # The reference best is over every counted run of the task, not only the best points.
        all_best = [
            r.best
            for (t, _, _), c in cells.items()
            if t == task
            for p in c.points.values()
            for r in p.results
        ]
        top = max(all_best)  # non-empty: the task has a chosen point with runs
        # Table 1's random agent is for the full tasks, not their single-target variants.
        dom = None if "single" in task.lower() else domain_of(task)
        if task in measured:
            rnd, src = measured[task], "measured"
        elif dom in TABLE1:
            rnd, src = TABLE1[dom].random, "Table 1"
        else:
            norm[task] = {
                "random": None,
                "best": top,
                "used": False,
                "note": "no random-agent return (not a paper domain; add it to DIR/random.json)",
            }
            continue
        ok = top > rnd
        norm[task] = {
            "random": rnd,
            "random_source": src,
            "best": top,
            "used": ok,
            "note": "" if ok else "no run beat the random agent",
        }

    scores: dict[str, dict[str, np.ndarray]] = {}
    for (task, label), runs in chosen.items():
        if norm[task]["used"]:
            s = stats.normalise([r.best for r in runs], norm[task]["random"], norm[task]["best"])
            scores.setdefault(label, {})[task] = s
    iqm_rows = []
    for label, per_task in scores.items():
        value, ci = stats.aggregate_iqm(list(per_task.values()), **kw)
        iqm_rows.append(
            {
                "label": label,
                "tasks": list(per_task),
                "runs": int(sum(a.size for a in per_task.values())),
                "iqm": value,
                "ci": ci,
            }
        )
    lo_tau = min([0.0] + [float(a.min()) for pt in scores.values() for a in pt.values()])
    taus = np.linspace(lo_tau, 1.0, 101)
    profiles = {
        label: stats.performance_profile(list(pt.values()), taus, **kw)
        for label, pt in scores.items()
    }

    return {
        "sweep": status.name,
        "sweep_dir": str(sweep_dir),
        "protocol": protocol,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "confidence": stats.CONFIDENCE,
            "n_resamples": n_resamples,
            "bootstrap_seed": seed,
            "bootstrap_method": "percentile",
            "tolerance": 0.05,
            "speedup_level_fraction": SPEEDUP_LEVEL_FRACTION,
            "include_partial": include_partial,
            "variant_fields": list(variant_fields),
        },
        "status": status.counts(),
        "evaluation": evaluation_protocol(manifest, status),
        "cells": rows,
        "probability_of_improvement": {"per_task": poi_rows, "average_over_tasks": poi_aggregate},
        "normalisation": norm,
        "iqm": iqm_rows,
        "performance_profile": {
            "taus": taus,
            "labels": {
                k: {"fraction": v[0], "ci_low": v[1], "ci_high": v[2]} for k, v in profiles.items()
            },
        },
        "speedup": _speedup(
            chosen, cell_of, {(r["task"], r["label"]): r["best_reward"] for r in rows}, kw
        ),
        "not_in_numbers": excluded,
        "unlisted_folders": list(status.unlisted),
        "_chosen": chosen,  # removed before writing; the curves are drawn from it
    }


def _evaluation_line(ev: dict[str, Any]) -> str:
    per = ev["episodes_per_evaluation"]
    text = "Test reward = mean return of " + ", ".join(
        f"{k} deterministic test episodes ({n} runs)" for k, n in per.items()
    )
    text += " per evaluation."
    below = ev["below_minimum"]
    if below:
        text += (
            f" **Warning:** {len(below)} runs use fewer than {ev['minimum']} test episodes per "
            "evaluation, so their best test reward is a noisy maximum."
        )
    return text


_BOUND_MARK = {"exact": "", "lower bound": "≥ ", "upper bound": "≤ ", "unknown": "? "}


def _speedup_markdown(rep: dict[str, Any]) -> list[str]:
    """The speed-up section (section 6.3): empty without a model-free variant, except for a
    section63 sweep, which says why its table is missing."""
    tables = rep["speedup"]
    if not tables:
        if rep["protocol"] == "section63":
            return [
                "",
                "## Speed-up over model-free NAF (section 6.3)",
                "",
                f"No finished '{SPEEDUP_BASELINE}' runs yet, so no speed-up.",
            ]
        return []
    pct = int(round(SPEEDUP_LEVEL_FRACTION * 100))
    out = [
        "",
        "## Speed-up over model-free NAF (section 6.3)",
        "",
        f"Level = first + {pct}% of (best - first), with first the model-free runs' first "
        "evaluation and best their converged best test reward (both means over seeds). Episodes "
        "to the level: per seed, the training episodes at its first evaluation with test reward "
        ">= the level; a seed that never reaches it is censored, counted at its budget (an "
        "unfinished run at its last evaluation) and listed below. Speed-up = median episodes "
        "of model-free / median episodes of the variant; interval: "
        f"{int(rep['settings']['confidence'] * 100)}% percentile bootstrap resampling the seeds "
        "of both independently. A median is marked ≥ when half or more of its seeds were "
        "censored (a lower bound), and the speed-up then ≥ or ≤ by which side is bounded. "
        "Read it beside the best test reward: a variant that plateaus lower may reach the level "
        "early without learning the task as well.",
    ]
    if rep["protocol"] == "section63":
        out += [
            "",
            "Paper (section 6.3): imagination rollouts with fitted time-varying linear models "
            'gave "2-5 factors of improvement in data efficiency" over model-free NAF; neural '
            'network models "negate the benefits of imagination rollouts".',
        ]
    for t in tables:
        out += ["", f"**{t['task']}** ({t['baseline']} against the other {t['algo']} variants)"]
        if t["level"] is None:
            out += ["", f"No speed-up: {t['note']}."]
            continue
        out += [
            "",
            f"Level {t['level']:.4g} ({pct}% of the way from {t['first_evaluation']:.4g} to "
            f"{t['baseline_best']:.4g}).",
            "",
            "| variant | seeds reaching the level | episodes to level, median [95% CI] | "
            "speed-up [95% CI] | best test reward [95% CI] |",
            "|---|---|---|---|---|",
        ]
        censored: list[str] = []
        for v in t["variants"]:
            e = v["episodes_to_level"]
            eps = ("" if e["exact"] else "≥ ") + _fmt(e["median"], e["ci"])
            sp = v["speedup"]
            spd = (
                "1 (baseline)"
                if sp is None
                else _BOUND_MARK[sp["bound"]] + _fmt(sp["value"], sp["ci"])
            )
            br = v["best_reward"]
            out.append(
                f"| {v['label']} | {v['reached']} of {v['seeds']} | {eps} | {spd} | "
                f"{_fmt(br['mean'], br['ci'])} |"
            )
            missed = [p for p in v["per_seed"] if not p["reached"]]
            if missed:
                censored.append(
                    f"{v['label']}: "
                    + ", ".join(f"seed {p['seed']} (at {p['episodes']:.0f})" for p in missed)
                )
        if censored:
            out += ["", "Not reached (censored): " + "; ".join(censored) + "."]
    return out


def _markdown(rep: dict[str, Any]) -> str:
    c = rep["status"]
    s = rep["settings"]
    out = [
        f"# Sweep report: {rep['sweep']}",
        "",
        f"Protocol: {rep['protocol'] or 'user spec'}. Runs: "
        + ", ".join(f"{c[k]} {k}" for k in STATES)
        + f". Generated {rep['generated']} from `sweep.json` and the run folders "
        "(`nafrl sweep report` rebuilds it).",
        "",
        "Per task and algorithm (variant), the grid point with the highest mean over seeds of the "
        "best test reward; for that point the best test reward (mean over seeds) and the episodes "
        "to reach within 5% of each run's best (median over seeds), as in the paper's Table 1. "
        f"Intervals: {int(s['confidence'] * 100)}% percentile bootstrap over seeds "
        f"(scipy.stats.bootstrap, {s['n_resamples']} resamples, seed {s['bootstrap_seed']}). "
        + ("Partial runs count. " if s["include_partial"] else "Only finished runs count. ")
        + "Seeds = finished / listed runs at that point. The best point is chosen on the same "
        "runs it is reported on, so its numbers lean optimistic, as the paper's Table 1 does.",
        "",
        _evaluation_line(rep["evaluation"]),
        "",
        "## Best grid point per task and algorithm",
        "",
        "| task | algorithm | best grid point | seeds | best test reward [95% CI] | paper | "
        "episodes to 5% [95% CI] | paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rep["cells"]:
        ref = r["paper"]
        pb = f"{ref['best']:.4g} ({ref['source']})" if ref else ""
        pe = f"{ref['episodes']}" if ref else ""
        if r["best_point"] is None:
            out.append(
                f"| {r['task']} | {r['label']} | no finished run | 0 | n/a | {pb} | n/a | {pe} |"
            )
            continue
        out.append(
            f"| {r['task']} | {r['label']} | {_cell_text(_point_str(r['best_point']))} | "
            f"{r['seeds']}/{r['runs_at_point']} | "
            f"{_fmt(r['best_reward']['mean'], r['best_reward']['ci'])} | "
            f"{pb} | {_fmt(r['episodes_to_5pct']['median'], r['episodes_to_5pct']['ci'])} | {pe} |"
        )
    out += _speedup_markdown(rep)
    poi = rep["probability_of_improvement"]
    out += [
        "",
        "## Probability of improvement: NAF against DDPG, each variant against its baseline",
        "",
    ]
    if poi["per_task"]:
        out += [
            "P(X > Y): the probability that a run of X at its best grid point has a higher best "
            "test reward than a run of Y at its own, ties counting one half (Mann-Whitney U / "
            "(n_x n_y); Agarwal et al. 2021, 'Deep RL at the edge of the statistical precipice'). "
            "Interval: stratified bootstrap (each algorithm's runs resampled separately; over "
            "tasks, within each task). 0.5 = no difference.",
            "",
            "| task | X | Y | runs X/Y | P(X > Y) [95% CI] |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {p['task']} | {p['x']} | {p['y']} | {p['n_x']}/{p['n_y']} | "
            f"{_fmt(p['p'], p['ci'])} |"
            for p in poi["per_task"]
        ]
        out += [
            f"| average over {len(p['tasks'])} tasks | {p['x']} | {p['y']} |  | "
            f"{_fmt(p['p'], p['ci'])} |"
            for p in poi["average_over_tasks"]
            if len(p["tasks"]) > 1
        ]
    else:
        out.append(
            "No task has finished runs of both NAF and DDPG, or of a variant and its baseline."
        )
    out += [
        "",
        "## Aggregate: interquartile mean of normalised scores",
        "",
        "Score = (best test reward - random agent) / (best - random agent), with best = the "
        "highest best test reward of any finished run of the task in this sweep and the random "
        "agent's return measured (`random.json`) or else from the paper's Table 1. IQM = mean of "
        "the middle 50% of all runs' scores pooled over tasks (scipy.stats.trim_mean 0.25); "
        "interval: stratified bootstrap over tasks (Agarwal et al. 2021).",
        "",
        "| task | random agent | best | used |",
        "|---|---|---|---|",
    ]
    for task, n in rep["normalisation"].items():
        rnd = f"{n['random']:.4g} ({n['random_source']})" if n["random"] is not None else "unknown"
        out.append(
            f"| {task} | {rnd} | {n['best']:.4g} | {'yes' if n['used'] else 'no: ' + n['note']} |"
        )
    if rep["iqm"]:
        out += ["", "| algorithm | tasks | runs | IQM [95% CI] |", "|---|---|---|---|"]
        out += [
            f"| {r['label']} | {len(r['tasks'])} | {r['runs']} | {_fmt(r['iqm'], r['ci'])} |"
            for r in rep["iqm"]
        ]
    else:
        out += ["", "No task could be normalised, so there is no aggregate."]
    if rep["figures"]:
        out += [
            "",
            "## Figures",
            "",
            "Learning curves: test reward against training episodes at each line's best grid "
            "point, mean over seeds with a 95% bootstrap band. Runs with different evaluation "
            "episodes are interpolated linearly onto the union of their evaluation episodes, and "
            "each line stops at its shortest run's last evaluation (never extrapolated).",
            "",
        ]
        out += [f"![{Path(f).stem}]({f})" for f in rep["figures"]]
        cut = [
            f"{task} {label}: cut at episode {d['cut_at_episode']:.0f}, "
            f"longest run {d['longest_run_episode']:.0f}"
            for task, per in rep["curves"].items()
            for label, d in per.items()
            if d.get("cut_at_episode") is not None
            and d["cut_at_episode"] < d["longest_run_episode"]
        ]
        if cut:
            out += ["", "Curves cut short by a shorter run: " + "; ".join(cut) + "."]
    out += ["", "## Runs not in these numbers", ""]
    if rep["not_in_numbers"]:
        out += [
            "| run | algorithm | task | seed | grid point | state | detail |",
            "|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {e['id']} | {e['label']} | {e['task']} | {e['seed']} | "
            f"{_cell_text(_point_str(e['point']))} | {e['state']} | {_cell_text(e['detail'])} |"
            for e in rep["not_in_numbers"]
        ]
    else:
        out.append("None: every run of the manifest finished and was evaluated.")
    if rep["unlisted_folders"]:
        out += [
            "",
            "Folders under runs/ not in sweep.json (ignored): "
            + ", ".join(rep["unlisted_folders"])
            + ".",
        ]
    return "\n".join(out) + "\n"


def write_report(
    sweep_dir: str | Path,
    *,
    include_partial: bool = False,
    variant_fields: Sequence[str] = VARIANT_FIELDS,
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = stats.SEED,
) -> Path:
    """Write ``DIR/report.md``, ``DIR/report.json`` and ``DIR/figures/*.png``; return the
    path of report.md.

    - Runs are grouped by task, algorithm and *variant* (:func:`variant_of`: model, imagination
      length, iLQG/MPC fraction, exploration), so several NAF variants on one task are separate
      lines. Within a group the best grid point has the highest mean over seeds of the best test
      reward (the max of a run's ``evals.csv`` test returns). For it: the mean best test reward
      with a 95% bootstrap CI over seeds, the median episodes to reach within 5% of each run's
      best with its CI, and the paper's value (:func:`paper_reference`).
    - NAF over DDPG: probability of improvement per task and averaged over tasks.
    - IQM of normalised scores per algorithm variant, with stratified bootstrap CIs; a
      performance profile; learning curves per task (:func:`stats.curves_on_common_grid`).
    - With a :data:`SPEEDUP_BASELINE` variant (section 6.3): per task, each variant's median
      episodes to the reference level (:data:`SPEEDUP_LEVEL_FRACTION`), censored seeds counted
      at their budget, and its speed-up over model-free with a bootstrap CI (:func:`_speedup`).
    - Only finished runs count unless ``include_partial``; every other run is listed under
      'Runs not in these numbers' with its state and error.
    """
    sweep_dir = Path(sweep_dir)
    rep = build_report(
        sweep_dir,
        include_partial=include_partial,
        variant_fields=variant_fields,
        n_resamples=n_resamples,
        seed=seed,
    )
    chosen: dict[tuple[str, str], list[RunResult]] = rep.pop("_chosen")
    figdir = sweep_dir / "figures"
    figdir.mkdir(exist_ok=True)
    figures: list[str] = []
    curves: dict[str, Any] = {}
    refs = {(r["task"], r["label"]): r["paper"] for r in rep["cells"]}
    for task in dict.fromkeys(t for t, _ in chosen):
        lines = [
            (label, runs, (refs[(t, label)] or {}).get("best"))
            for (t, label), runs in chosen.items()
            if t == task
        ]
        name = f"figures/curves_{_slug(task)}.png"
        curves[task] = _plot_curves(sweep_dir / name, task, lines, seed)
        figures.append(name)
    prof = rep["performance_profile"]
    if prof["labels"]:
        name = "figures/performance_profile.png"
        _plot_profile(
            sweep_dir / name,
            np.asarray(prof["taus"]),
            {k: (v["fraction"], v["ci_low"], v["ci_high"]) for k, v in prof["labels"].items()},
        )
        figures.append(name)
    drawn = [t for t in rep["speedup"] if any(v["speedup"] for v in t["variants"])]
    if drawn:
        name = "figures/speedup.png"
        _plot_speedup(sweep_dir / name, drawn, rep["protocol"] == "section63")
        figures.append(name)
    # A figure of an earlier report whose line is gone (e.g. a task removed) must not linger.
    old_figures = [figdir / "performance_profile.png", figdir / "speedup.png"]
    for old in [*figdir.glob("curves_*.png"), *old_figures]:
        if old.exists() and f"figures/{old.name}" not in figures:
            old.unlink()
    rep["figures"] = figures
    rep["curves"] = curves
    atomic_write_text(sweep_dir / "report.json", json.dumps(_clean(rep), indent=1) + "\n")
    md = sweep_dir / "report.md"
    atomic_write_text(md, _markdown(rep))
    return md
