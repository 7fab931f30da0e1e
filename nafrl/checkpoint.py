"""Checkpoints: one ``.npz`` file of plain arrays plus a JSON header, written atomically.

Safe by construction: arrays are read with ``allow_pickle=False`` and the header is JSON, so
loading a checkpoint never unpickles or runs code. Guarantees of :func:`save_checkpoint`:

- **Atomic:** the file is written to a temporary file in the same folder, flushed to disk and
  renamed over the old one, so a crash or a full disk while saving leaves the previous
  checkpoint intact. Temporary files left by a killed writer are removed by the next save.
- **Finite only:** a checkpoint whose float arrays hold NaN or inf is never written.
- **Regular files only:** a directory, device or other special file at the path is refused;
  a symbolic link is followed (the file it points to is replaced, the link stays).
- **Mode:** the file gets ``0o666`` minus the process umask, as ``open()`` would give it.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from nafrl.errors import CheckpointError, StorageError

FORMAT = "nafrl-checkpoint"
VERSION = 1
_META_KEY = "__meta__"


def process_umask() -> int:
    """The process umask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def writable_target(path: str | os.PathLike) -> Path:
    """The regular file that writing ``path`` will replace: symlinks are followed; a
    directory, device, pipe or socket is refused with :class:`CheckpointError`."""
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    try:
        st = target.stat()
    except FileNotFoundError:
        return target
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror}") from e
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(
            f"refusing to write {path}: it is {_kind(st.st_mode)}; "
            "a checkpoint path must name a regular file (or a new one)"
        )
    return target


def _temp_prefix(name: str) -> str:
    return f".{name}."


def clean_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files that an earlier, killed writer of ``path`` left behind
    (``.NAME.<pid>.*.tmp`` whose process is gone); returns the removed paths."""
    path = Path(path)
    removed = []
    pattern = glob.escape(_temp_prefix(path.name)) + "*.tmp"
    for tmp in path.parent.glob(pattern):
        pid_text = tmp.name[len(_temp_prefix(path.name)) :].split(".", 1)[0]
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue  # a writer that is still running (another process or this one)
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_finite(arrays: dict[str, np.ndarray], what: str) -> None:
    """Raise :class:`CheckpointError` naming the first float array with NaN or inf."""
    for k, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise CheckpointError(f"{what}: array {k!r} holds {bad} NaN or infinite value(s)")


def save_checkpoint(
    path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> Path:
    """Atomically write ``arrays`` and the JSON-serialisable ``meta`` to ``path``.

    Refuses non-finite float arrays and non-regular targets (:class:`CheckpointError`);
    a write that fails (read-only folder, full disk) raises :class:`StorageError` and leaves
    the previous file as it was."""
    path = Path(path)
    target = writable_target(path)
    check_finite(arrays, f"refusing to write checkpoint {path}")
    header = json.dumps({"format": FORMAT, "version": VERSION, **meta}, allow_nan=False).encode()
    payload = {_META_KEY: np.frombuffer(header, dtype=np.uint8), **arrays}
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(target)
        fd, tmp = tempfile.mkstemp(
            prefix=f"{_temp_prefix(target.name)}{os.getpid()}.", suffix=".tmp", dir=target.parent
        )
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~process_umask())  # mkstemp's 0600 ignores the umask
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
        _fsync_dir(target.parent)
    except OSError as e:
        if isinstance(e, StorageError):
            raise
        raise StorageError(
            f"cannot write checkpoint {path}: {e.strerror or e}"
            + ("; free some disk space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "")
            + "; the previous checkpoint (if any) is unchanged"
        ) from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint; raise :class:`CheckpointError` naming the problem.

    Checks only the container (an ``.npz`` with a nafrl header of this version); the
    header's fields are validated by :mod:`nafrl.persistence`."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file, so not a nafrl checkpoint")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError(
                f"{path} holds a single array (.npy), not a nafrl checkpoint (.npz written "
                "by save())"
            )
        with loaded as z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(
            f"{path} is not a readable nafrl checkpoint (truncated or corrupt: {e}); "
            "expected a file written by nafrl's save()"
        ) from e
    if _META_KEY not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not a nafrl checkpoint (no header)")
    raw = arrays.pop(_META_KEY)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"header is a {raw.dtype} array of shape {raw.shape}")
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path} has a corrupt header: {e}") from e
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path} has a corrupt header: a JSON {type(meta).__name__}, expected an object"
        )
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a nafrl checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {meta.get('version')!r}, this nafrl reads {VERSION}"
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
        if a.dtype.kind != ref.dtype.kind and {a.dtype.kind, ref.dtype.kind} != {"i", "u"}:
            raise CheckpointError(
                f"checkpoint entry {name!r} has dtype {a.dtype}, the model expects {ref.dtype}"
            )
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise CheckpointError(f"checkpoint entry {name!r} holds NaN or infinite values")
        leaves.append(jax.numpy.asarray(a, dtype=ref.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)
