"""Learning-curve figures from run folders (PNG)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """A metrics CSV as {column: float array}; empty cells become NaN."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {
        k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows])
        for k in rows[0]
    }


def plot_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    x: str = "total_steps",
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """One figure, one line per run: test reward (evals.csv) against ``x`` ('total_steps' or
    'episode'), with the training-episode return as a faint line beneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in ("total_steps", "episode"):
        raise ValueError(f"x must be 'total_steps' or 'episode', got {x!r}")
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for i, run in enumerate(run_dirs):
        run = Path(run)
        if not (run / "episodes.csv").exists():
            raise FileNotFoundError(f"{run} is not a run folder (no episodes.csv)")
        label = labels[i] if labels else run.name
        color = f"C{i % 10}"
        ep = read_csv(run / "episodes.csv")
        if ep:
            ax.plot(ep[x], ep["return"], color=color, alpha=0.25, lw=0.8)
        ev = read_csv(run / "evals.csv") if (run / "evals.csv").exists() else {}
        if ev:
            ax.plot(ev[x], ev["test_return"], color=color, lw=1.8, label=f"{label} (test)")
        elif ep:
            ax.plot([], [], color=color, label=f"{label} (train)")
    ax.set_xlabel("environment steps" if x == "total_steps" else "episodes")
    ax.set_ylabel("episode return")
    ax.set_title(title or "learning curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
