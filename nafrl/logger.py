"""Run folders: config, metric CSVs, TensorBoard events.

A run folder holds ``config.json``, ``episodes.csv`` (one row per training episode),
``evals.csv`` (one row per evaluation: the paper's "test reward"), TensorBoard event files
under ``tb/``, ``checkpoint.npz`` and ``learning_curve.png``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nafrl.checkpoint import process_umask
from nafrl.errors import ConfigError, RunFolderError, StorageError

#: Columns of ``episodes.csv``. Every key of a logged row must be one of these (an unknown
#: key is an error, so a new metric cannot be dropped silently); a missing one is left empty
#: (``pi_loss`` exists only for DDPG, ``mean_diag_p``/``max_diag_p`` only for NAF:
#: the episode means of each update's mean and max of diag P = diag(L L^T)). ``td_abs`` is
#: the mean |y - Q| of the minibatch, ``mu_saturated`` the fraction of policy outputs with
#: |mu| > 0.99 (tanh's flat tails, where mu gets almost no gradient).
EPISODE_FIELDS = (
    "episode",
    "total_steps",
    "return",
    "length",
    "guided",
    "q_loss",
    "mean_v",
    "pi_loss",
    "td_abs",
    "mean_diag_p",
    "max_diag_p",
    "mu_saturated",
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
        if str(run_dir).strip() in ("", ".") or Path(run_dir).resolve() == Path.cwd():
            raise ConfigError(
                f"run_dir={str(run_dir)!r} is the current directory; accepted: the path of a "
                "folder for this run's files (e.g. runs/my-run)"
            )
        self.run_dir = Path(run_dir)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create run folder {self.run_dir}: {e.strerror}") from e
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tb"))

    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``config.json`` atomically."""
        atomic_write_text(
            self.run_dir / "config.json", json.dumps(config, indent=2, sort_keys=True)
        )

    def truncate_after(self, episode: int) -> None:
        """Drop rows of episodes after ``episode``; each file is rewritten atomically
        (temporary file, then rename), so a kill meanwhile leaves the old file whole."""
        for name in ("episodes.csv", "evals.csv"):
            path = self.run_dir / name
            if not path.exists():
                continue
            rows = read_rows(path)
            fields = EPISODE_FIELDS if name == "episodes.csv" else EVAL_FIELDS
            kept = [r for r in rows if _episode_of(r, path) <= episode]
            write_rows_atomic(
                path, [{k: v for k, v in r.items() if k in fields} for r in kept], fields
            )

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
        for row in rows:
            unknown = sorted(set(row) - set(fields))
            if unknown:  # a metric without a column would be lost: add it to the fields
                raise ValueError(
                    f"{path.name}: unknown field(s) {', '.join(unknown)}; the columns are "
                    f"{', '.join(fields)} (nafrl.logger)"
                )
        new = mode == "w" or not path.exists() or path.stat().st_size == 0
        try:
            with path.open(mode, newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields, restval="")
                if new:
                    w.writeheader()
                w.writerows(rows)
        except OSError as e:
            raise StorageError(f"cannot write {path}: {e.strerror}") from e

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _episode_of(row: dict[str, str], path: Path) -> int:
    try:
        return int(row["episode"])
    except (KeyError, TypeError, ValueError) as e:
        raise RunFolderError(f"{path} is corrupt: a row has episode={row.get('episode')!r}") from e


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a metrics CSV as dicts of strings."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def write_rows_atomic(
    path: str | Path, rows: Iterable[dict[str, Any]], fields: Sequence[str] | None = None
) -> None:
    """Write ``rows`` as a CSV with a header atomically (:func:`atomic_write_text`). The
    columns are ``fields``, or else the sorted union of the rows' keys; a missing value is
    an empty cell."""
    rows = list(rows)
    if fields is None:
        fields = sorted({k for r in rows for k in r})
    text = io.StringIO(newline="")
    w: csv.DictWriter[str] = csv.DictWriter(text, fieldnames=list(fields), restval="")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, text.getvalue())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically: a temporary file in the same folder, flushed,
    then renamed over it. A kill or a full disk leaves the old file as it was."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", newline="") as f:
            mode = 0o666 & ~process_umask()
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise StorageError(
            f"cannot write {path}: {e.strerror or e}; the old file is unchanged"
        ) from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def read_json_object(path: str | Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """A run folder's JSON file (``config.json``, ``done.json``) as a dict; a missing,
    corrupt or incomplete file is a :class:`RunFolderError` naming it and the missing keys."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise RunFolderError(f"{path} does not exist: not a run folder") from e
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise RunFolderError(f"{path} is corrupt ({e}); expected a JSON object") from e
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is corrupt: a JSON {type(data).__name__}, expected an object")
    missing = [k for k in required if k not in data]
    if missing:
        raise RunFolderError(f"{path} lacks the key(s) {', '.join(missing)}")
    return data
