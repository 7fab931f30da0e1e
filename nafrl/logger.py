"""Run folders: config, metric CSVs, TensorBoard events.

A run folder holds ``config.json``, ``episodes.csv`` (one row per training episode),
``evals.csv`` (one row per evaluation: the paper's "test reward"), TensorBoard event files
under ``tb/``, ``checkpoint.npz`` and ``learning_curve.png``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

EPISODE_FIELDS = (
    "episode",
    "total_steps",
    "return",
    "length",
    "q_loss",
    "mean_v",
    "steps_per_sec",
    "wall_time",
    "time_env",
    "time_update",
    "time_model_fit",
    "time_imagination",
)
EVAL_FIELDS = ("episode", "total_steps", "test_return", "test_return_std", "wall_time")


class RunLogger:
    """Appends metric rows to the CSVs and TensorBoard; ``truncate_after`` drops rows written
    after the checkpoint a run resumes from, so a resumed run's files read as one run."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tb"))

    def write_config(self, config: dict[str, Any]) -> None:
        (self.run_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))

    def truncate_after(self, episode: int) -> None:
        for name in ("episodes.csv", "evals.csv"):
            path = self.run_dir / name
            if not path.exists():
                continue
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            fields = EPISODE_FIELDS if name == "episodes.csv" else EVAL_FIELDS
            self._write_rows(path, fields, [r for r in rows if int(r["episode"]) <= episode], "w")

    def log_episode(self, row: dict[str, Any]) -> None:
        self._append("episodes.csv", EPISODE_FIELDS, row, "train")

    def log_eval(self, row: dict[str, Any]) -> None:
        self._append("evals.csv", EVAL_FIELDS, row, "eval")

    def log_scalars(self, group: str, values: dict[str, float], step: int) -> None:
        if self._tb is not None:
            for k, v in values.items():
                if math.isfinite(v):  # e.g. no Q loss yet before learning starts
                    self._tb.add_scalar(f"{group}/{k}", v, step)

    def _append(self, name: str, fields: tuple[str, ...], row: dict[str, Any], group: str) -> None:
        self._write_rows(self.run_dir / name, fields, [row], "a")
        self.log_scalars(
            group,
            {k: float(v) for k, v in row.items() if k not in ("episode", "total_steps")},
            int(row["total_steps"]),
        )

    @staticmethod
    def _write_rows(path: Path, fields: tuple[str, ...], rows: list[dict], mode: str) -> None:
        new = mode == "w" or not path.exists() or path.stat().st_size == 0
        with path.open(mode, newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerows(rows)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
