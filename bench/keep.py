"""Commit-ready files of the finished runs under a work folder (issue 14: keep the run
folders' CSVs, never checkpoints).

Run folders under ``bench/results/**/work/`` are ignored by git; this prints the small files
of every finished run (a ``done.json`` beside them: ``*.csv`` and ``*.json``) and every
sweep manifest (``sweep.json``), so that ``git add -f`` can keep them. A fresh checkout then
skips those runs on a rerun, and reports can be rebuilt from them.

    git add -f $(python bench/keep.py bench/results/suite/work)
"""

from __future__ import annotations

import sys
from pathlib import Path


def keep(work: Path) -> list[Path]:
    """The files to keep under ``work``: finished runs' CSV/JSON files and sweep manifests."""
    out = sorted(work.rglob("sweep.json"))
    for done in sorted(work.rglob("done.json")):
        out += sorted(p for p in done.parent.iterdir() if p.suffix in (".csv", ".json"))
    return sorted(set(out))


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["bench/results"]:
        for p in keep(Path(arg)):
            print(p)
