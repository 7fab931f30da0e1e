"""Per-seed diagnostics of reliability screens and suite runs (issue 13), as text.

For each run folder holding ``episodes.csv`` (and ``evals.csv``), prints the training
statistics at five step marks (mean V, mean and max diag P, mean |TD error|, the fraction of
saturated mu; each averaged over the ten episodes before the mark), then the test returns:
best, mean of the last three, the first step where a test reached the threshold, and the last
eight tests. A run folder is any folder below the given paths with an ``episodes.csv``.

    python bench/diag.py bench/results/reliability/obs-norm/Hopper-v5 --threshold 1000
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

import numpy as np
from reliability import read_csv, test_summary  # bench/ is on the path when run as a script

MARKS = 5
STATS = ("mean_v", "mean_diag_p", "max_diag_p", "td_abs", "mu_saturated")


def window_mean(values: np.ndarray) -> float:
    """Mean over the non-NaN values (NaN if there are none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows (DDPG has no P)
        return float(np.nanmean(values)) if values.size else math.nan


def describe(run: Path, threshold: float) -> str:
    """The diagnostic block of one run folder."""
    lines = [f"{run}  ({'done' if (run / 'done.json').exists() else 'running'})"]
    ep = read_csv(run / "episodes.csv")
    steps = ep["total_steps"]
    if steps.size:
        lines.append("  " + "step".rjust(8) + "".join(k.rjust(13) for k in STATS))
        for i in range(1, MARKS + 1):
            mark = steps[-1] * i / MARKS
            window = np.flatnonzero(steps <= mark)[-10:]
            nan = np.full(steps.shape, math.nan)
            cells = "".join(f"{window_mean(ep.get(k, nan)[window]):13.4g}" for k in STATS)
            lines.append(f"  {int(mark):8d}{cells}")
    if (run / "evals.csv").exists():
        ev = read_csv(run / "evals.csv")
        best, final3, first = test_summary(ev, threshold)
        lines.append(
            f"  tests: best {best:.4g}  final3 {final3:.4g}  "
            f"first>={threshold:g} {first if first is not None else '-'}  "
            f"last8 {' '.join(f'{t:.4g}' for t in ev['test_return'][-8:])}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run folders or folders above them")
    parser.add_argument("--threshold", type=float, default=math.inf, help="'learned' test return")
    args = parser.parse_args()
    runs = sorted({p.parent for root in args.paths for p in root.rglob("episodes.csv")})
    if not runs:
        raise SystemExit(f"no episodes.csv below {', '.join(map(str, args.paths))}")
    for run in runs:
        print(describe(run, args.threshold))


if __name__ == "__main__":
    main()
