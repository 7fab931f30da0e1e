"""Checkpoints: one ``.npz`` file of plain arrays plus a JSON header, written atomically.

Safe by construction: arrays are read with ``allow_pickle=False`` and the header is JSON, so
loading a checkpoint never unpickles or runs code. A checkpoint is written to a temporary
file in the same folder and renamed over the old one, so a crash while saving leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

FORMAT = "nafrl-checkpoint"
VERSION = 1
_META_KEY = "__meta__"


class CheckpointError(ValueError):
    """A file that is not a readable nafrl checkpoint (missing, truncated, foreign, mismatched)."""


def save_checkpoint(
    path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> Path:
    """Atomically write ``arrays`` and the JSON-serialisable ``meta`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"format": FORMAT, "version": VERSION, **meta}).encode()
    payload = {_META_KEY: np.frombuffer(header, dtype=np.uint8), **arrays}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint; raise :class:`CheckpointError` naming the problem."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise CheckpointError(
            f"{path} is not a readable nafrl checkpoint (truncated or corrupt: {e}); "
            "expected a file written by nafrl's save()"
        ) from e
    if _META_KEY not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not a nafrl checkpoint (no header)")
    try:
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} has a corrupt header: {e}") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a nafrl checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {meta.get('version')}, this nafrl reads {VERSION}"
        )
    return arrays, meta


def flatten_tree(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    """A pytree as {'prefix/path/to/leaf': array}."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {f"{prefix}{jax.tree_util.keystr(p)}": np.asarray(v) for p, v in leaves}


def unflatten_tree(template: Any, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    """Fill ``template``'s structure from ``arrays``, checking every name, shape and dtype."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for p, ref in paths:
        name = f"{prefix}{jax.tree_util.keystr(p)}"
        if name not in arrays:
            raise CheckpointError(f"checkpoint lacks {name!r}: it was written for another model")
        a = arrays[name]
        ref = np.asarray(ref)
        if a.shape != ref.shape:
            raise CheckpointError(
                f"checkpoint entry {name!r} has shape {a.shape}, the model expects {ref.shape}"
            )
        leaves.append(jax.numpy.asarray(a, dtype=ref.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)
