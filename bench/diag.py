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
import csv
import math
from pathlib import Path

MARKS = 5
STATS = ("mean_v", "mean_diag_p", "max_diag_p", "td_abs", "mu_saturated")


def read_csv(path: Path) -> list[dict[str, float]]:
    """Rows of a metrics CSV as floats (empty cells are NaN)."""
    if not path.exists():
        return []
    with path.open() as f:
        return [
            {k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(f)
        ]


def window_mean(rows: list[dict[str, float]], key: str) -> float:
    vals = [r[key] for r in rows if key in r and not math.isnan(r[key])]
    return sum(vals) / len(vals) if vals else math.nan


def describe(run: Path, threshold: float) -> str:
    """The diagnostic block of one run folder."""
    episodes = read_csv(run / "episodes.csv")
    evals = read_csv(run / "evals.csv")
    lines = [f"{run}  ({'done' if (run / 'done.json').exists() else 'running'})"]
    if episodes:
        last = episodes[-1]["total_steps"]
        lines.append("  " + "step".rjust(8) + "".join(k.rjust(13) for k in STATS))
        for i in range(1, MARKS + 1):
            mark = last * i / MARKS
            upto = [r for r in episodes if r["total_steps"] <= mark][-10:]
            cells = "".join(f"{window_mean(upto, k):13.4g}" for k in STATS)
            lines.append(f"  {int(mark):8d}{cells}")
    if evals:
        tests = [r["test_return"] for r in evals]
        first = next((r["total_steps"] for r in evals if r["test_return"] >= threshold), None)
        final3 = sum(tests[-3:]) / len(tests[-3:])
        lines.append(
            f"  tests: best {max(tests):.4g}  final3 {final3:.4g}  "
            f"first>={threshold:g} {int(first) if first is not None else '-'}  "
            f"last8 {' '.join(f'{t:.4g}' for t in tests[-8:])}"
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
