"""Park unfinished runs outside the work tree at a session's end; bring them back at the next
start (issue 14).

A session ends with its processes killed, and the next one may get a fresh machine with a
checkout laid anew: the checkpoint of a partial run (never committed, see keep.py) is then
gone, so a run longer than one session's compute could never finish. When the next session
follows soon it may get the same machine as it was (it happened on 2026-12-04), and then
the run resumes. ``park`` copies every unfinished run folder under ``bench/results/**/work/``
(one with ``checkpoint.npz`` and no ``done.json``) to ``PARK`` outside the work tree; ``unpark``
copies each parked folder back where the same run (same folder, so the same config hash) has
neither a checkpoint nor ``done.json`` yet, and the runner then resumes it from that
checkpoint. On a fresh machine ``PARK`` is empty and ``unpark`` does nothing.

    python bench/park.py park      # at a session's end, with the workers paused or stopped
    python bench/park.py unpark    # at the next start, before any sweep runs
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PARK = Path("/var/tmp/nafrl-parked")


def unfinished(results: Path = RESULTS) -> list[Path]:
    """Run folders under ``results/**/work/`` with a checkpoint and without ``done.json``."""
    return sorted(
        ck.parent
        for ck in results.rglob("checkpoint.npz")
        if "work" in ck.relative_to(results).parts and not (ck.parent / "done.json").exists()
    )


def _copy(src: Path, dst: Path) -> None:
    """Copy a folder whole, replacing ``dst`` only once the copy is complete."""
    tmp = dst.with_name(dst.name + ".parking")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(".lock", "*.tmp"))
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)


def park(results: Path = RESULTS, park_dir: Path = PARK) -> list[Path]:
    """Copy every unfinished run folder to ``park_dir``; returns the folders parked."""
    done = []
    for run in unfinished(results):
        dst = park_dir / run.relative_to(results)
        dst.parent.mkdir(parents=True, exist_ok=True)
        _copy(run, dst)
        done.append(run)
    return done


def unpark(results: Path = RESULTS, park_dir: Path = PARK) -> list[Path]:
    """Copy parked folders back where their run has no checkpoint and is not finished."""
    back = []
    for ck in sorted(park_dir.rglob("checkpoint.npz")) if park_dir.is_dir() else []:
        if ck.parent.name.endswith(".parking"):
            continue  # an interrupted park
        run = results / ck.parent.relative_to(park_dir)
        if (run / "done.json").exists() or (run / "checkpoint.npz").exists():
            continue
        run.parent.mkdir(parents=True, exist_ok=True)
        _copy(ck.parent, run)
        back.append(run)
    return back


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("action", choices=("park", "unpark"))
    ap.add_argument("--park-dir", type=Path, default=PARK)
    args = ap.parse_args()
    moved = (park if args.action == "park" else unpark)(RESULTS, args.park_dir)
    for run in moved:
        print(f"{args.action}: {run.relative_to(ROOT)}")
    print(f"{args.action}: {len(moved)} run folder(s) ({args.park_dir})")
