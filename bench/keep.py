"""Commit-ready files of the finished runs under a work folder (issue 14: keep the run
folders' CSVs, never checkpoints).

Run folders under ``bench/results/**/work/`` are ignored by git; this prints the small files
of every finished run (a ``done.json`` beside them: ``*.csv`` and ``*.json``) and every
sweep manifest (``sweep.json``), so that ``git add -f`` can keep them. A fresh checkout then
skips those runs on a rerun, and reports can be rebuilt from them.

    git add -f $(python bench/keep.py bench/results/suite/work)

A session can be stopped at any moment, and a finished run that was not committed is lost
with the machine (twice so far). ``--commit`` commits the finished runs that git does not
track yet, in one commit naming them; ``--every SECONDS`` repeats that until killed, so a
background loop keeps each run minutes after it finishes:

    python bench/keep.py --commit --every 300 bench/results/paper bench/results/suite/work &
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path


def keep(work: Path) -> list[Path]:
    """The files to keep under ``work``: finished runs' CSV/JSON files and sweep manifests."""
    out = sorted(work.rglob("sweep.json"))
    for done in sorted(work.rglob("done.json")):
        out += sorted(p for p in done.parent.iterdir() if p.suffix in (".csv", ".json"))
    return sorted(set(out))


def run_name(folder: Path) -> str:
    """A run folder's name for the commit message: the sweep runner's folders are named by
    their run id; the suite's SB3 and adopted folders are just ``seedN``, so these get their
    agent and task (``sb3-td3/Reacher-v5/seed0``)."""
    if folder.name.startswith("seed") and len(folder.parts) >= 3:
        return "/".join(folder.parts[-3:])
    return folder.name


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def commit_new(works: list[Path], repo: Path) -> list[str]:
    """Commit the finished runs under ``works`` that git does not track yet (their files and
    the sweep manifests, nothing else that is staged); return their folder names."""
    specs = [str(w.resolve()) for w in works]  # absolute: git runs in repo, the caller anywhere
    tracked = set(_git(repo, "ls-files", "-z", "--", *specs).split("\0"))
    files = [p.resolve().relative_to(repo.resolve()).as_posix() for w in works for p in keep(w)]
    new_runs = sorted(
        {run_name(Path(f).parent) for f in files if f.endswith("/done.json") and f not in tracked}
    )
    if not new_runs:
        return []
    paths = [f for f in files if f not in tracked or f.endswith("sweep.json")]
    _git(repo, "add", "-f", "--", *paths)
    _git(repo, "commit", "-q", "-m", "runs finished (bench/keep.py): " + ", ".join(new_runs),
         "--only", "--", *paths)  # fmt: skip
    return new_runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("works", nargs="*", type=Path, default=[Path("bench/results")])
    ap.add_argument("--commit", action="store_true", help="commit new finished runs")
    ap.add_argument("--every", type=float, default=0.0, help="with --commit: repeat, seconds")
    args = ap.parse_args()
    if not args.commit:
        for work in args.works:
            for p in keep(work):
                print(p)
        return
    repo = Path(_git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    while True:
        try:
            runs = commit_new(args.works, repo)
            if runs:
                print(time.strftime("%H:%M:%S"), "committed", " ".join(runs), flush=True)
        except subprocess.CalledProcessError as e:  # e.g. the index is locked by another git
            print(time.strftime("%H:%M:%S"), "not committed:", e.stderr.strip(), flush=True)
        if args.every <= 0:
            return
        time.sleep(args.every)


if __name__ == "__main__":
    main()
