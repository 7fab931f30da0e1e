"""Process-wide settings, in one place: XLA flags, thread counts, the garbage collector and
the rendering back end.

``import nafrl`` calls :func:`configure_process` once with its defaults. A worker process
(a sweep's pool, a Ray actor) calls it again first thing, e.g.
``nafrl.runtime.configure_process(threads=1)`` so several runs share the cores without
oversubscribing them. Rendering is configured only when something renders
(:func:`select_render_backend`), so training needs no OpenGL library.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nafrl.errors import RenderingUnavailableError

#: Appended to ``XLA_FLAGS``: YNNPACK matrix products make the jitted updates of section
#: 6's small networks 5-10% faster on CPU (bench/throughput.py).
XLA_DEFAULT_FLAG = "--xla_cpu_experimental_ynn_fusion_type=dot"

#: Off-screen back ends in the order they are tried, with the library each loads and the
#: Debian package that provides it.
RENDER_BACKENDS: tuple[tuple[str, str, str], ...] = (
    ("osmesa", "OSMesa", "libosmesa6"),
    ("egl", "EGL", "libegl1"),
)

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def configure_process(threads: int | None = None, xla_defaults: bool | None = None) -> None:
    """Apply nafrl's process-wide settings; each only where the user has not chosen.

    - ``XLA_FLAGS`` gains :data:`XLA_DEFAULT_FLAG` unless ``NAFRL_XLA_DEFAULTS=0`` (or
      ``xla_defaults=False``) or the flag is already named. JAX reads it when its CPU back
      end starts, so call this before the first JAX computation.
    - ``threads=n``: BLAS (OpenBLAS, OpenMP, MKL) uses ``n`` threads, and with ``n = 1``
      XLA's CPU back end runs its Eigen operations on one thread. The OpenBLAS already
      loaded by NumPy is set at once; the others are read when their library starts.
    """
    if xla_defaults is None:
        xla_defaults = os.environ.get("NAFRL_XLA_DEFAULTS", "1") != "0"
    flags = os.environ.get("XLA_FLAGS", "")
    if xla_defaults and "ynn_fusion_type" not in flags:
        flags = f"{flags} {XLA_DEFAULT_FLAG}".strip()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        for var in _THREAD_VARS:
            os.environ[var] = str(threads)
        if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
            flags = f"{flags} --xla_cpu_multi_thread_eigen=false"
        set_blas_threads(threads)
    bare = [tok for tok in flags.split() if not tok.startswith("-")]
    if bare:
        # XLA's parser stops at the first token without dashes and drops every flag after it,
        # unknown ones included, without a word (measured with jaxlib 0.10).
        import warnings

        warnings.warn(
            f"XLA_FLAGS={flags!r}: {bare[0]!r} is not a --flag, so XLA ignores it and every "
            "flag after it; write each flag as --name=value",
            stacklevel=2,
        )
    if flags:
        os.environ["XLA_FLAGS"] = flags.strip()
    _guard_requested_backend()


def machine_info(dists: Sequence[str] = ("jax", "jaxlib", "mujoco", "numpy")) -> dict[str, Any]:
    """What a run's numbers depend on besides its seed and config: the CPU (XLA and MuJoCo
    compile for its vector units, so the same seed differs in the last bits across CPU
    models and then diverges), the cores and XLA's flags (thread count changes XLA's
    summation order) and the versions of ``dists`` (None where not installed). Recorded in
    each run's ``done.json`` and in the benches' results."""
    import platform
    from importlib import metadata

    cpu: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "flags") and key not in cpu:
                cpu[key] = value.strip()
    flags = set(cpu.get("flags", "").split())
    vector = next((v for v in ("avx512f", "avx2", "avx", "sse4_2") if v in flags), "unknown")
    versions: dict[str, str | None] = dict.fromkeys(dists)
    for dist in dists:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "cpu": cpu.get("model name") or platform.processor() or platform.machine(),
        "cpu_family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        "vector_isa": vector,
        "cores": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "versions": versions,
    }


#: Set when ``MUJOCO_GL`` named an off-screen back end whose library is missing.
_MISSING_BACKEND: tuple[str, str] | None = None


def _guard_requested_backend() -> None:
    """A ``MUJOCO_GL=osmesa`` (or ``egl``) whose library is missing would make ``import
    mujoco`` crash, so training too. Switch MuJoCo's GL off instead and report the missing
    package when something renders."""
    global _MISSING_BACKEND
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    for backend, lib, package in RENDER_BACKENDS:
        if chosen == backend and "mujoco" not in sys.modules and not _loadable(lib):
            _MISSING_BACKEND = (backend, package)
            os.environ["MUJOCO_GL"] = "disable"


@functools.cache
def _openblas() -> tuple[Any, Any] | None:
    """(get, set) of the thread count of NumPy's bundled OpenBLAS, if it can be found."""
    import numpy as np

    try:
        libdir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
        for path in sorted(libdir.glob("libscipy_openblas*.so*")):
            lib = ctypes.CDLL(str(path))
            for suffix in ("64_", "_64_", ""):
                get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
                set_ = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    return get, set_
    except OSError:
        pass
    return None


def get_blas_threads() -> int | None:
    """Threads of NumPy's OpenBLAS (None if it cannot be found)."""
    fns = _openblas()
    return None if fns is None else int(fns[0]())


def set_blas_threads(n: int) -> None:
    """Set the threads of NumPy's OpenBLAS (no-op if it cannot be found)."""
    fns = _openblas()
    if fns is not None:
        fns[1](int(n))


@contextlib.contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """Run NumPy's BLAS on ``n`` threads inside the block (no-op if OpenBLAS is not found).

    EM issues many medium-sized products; on an oversubscribed 2-core machine OpenBLAS's
    worker threads made a 20-episode GMM update 20-50x slower (measured 0.3 s single-threaded
    against 7-26 s with threads).
    """
    before = get_blas_threads()
    if before is None:
        yield
        return
    set_blas_threads(n)
    try:
        yield
    finally:
        set_blas_threads(before)


def freeze_gc() -> bool:
    """Leave the objects alive now out of the garbage collector's scans, until
    :func:`unfreeze_gc`; returns whether it froze (pass that to :func:`unfreeze_gc`).

    While training, the modules, networks and buffers (a few hundred thousand objects) are
    scanned by every full collection, about 2% of a HalfCheetah run. Skipped if the program
    froze objects itself (unfreezing would undo that).
    """
    if gc.get_freeze_count() != 0:
        return False
    gc.freeze()
    return True


def unfreeze_gc(frozen: bool) -> None:
    """Undo :func:`freeze_gc` (if it froze), so nothing leaks."""
    if frozen:
        gc.unfreeze()


@contextlib.contextmanager
def gc_frozen() -> Iterator[None]:
    """:func:`freeze_gc` for the duration of the block."""
    frozen = freeze_gc()
    try:
        yield
    finally:
        unfreeze_gc(frozen)


def _loadable(name: str) -> bool:
    """Can the shared library ``name`` (e.g. 'OSMesa') be loaded by the dynamic linker?"""
    path = ctypes.util.find_library(name)
    if path is None:
        return False
    try:
        ctypes.CDLL(path)
    except OSError:  # e.g. a file that is not a library any more
        return False
    return True


def select_render_backend() -> str:
    """Choose MuJoCo's OpenGL back end for off-screen rendering and return its name.

    Called only when something renders. A ``MUJOCO_GL`` chosen by the user is kept, as is
    MuJoCo's own choice (GLFW) on a machine with a display; otherwise the first present of
    OSMesa, then EGL (only the one ``PYOPENGL_PLATFORM`` names, if it is set). Raises
    :class:`RenderingUnavailableError` naming the Debian package
    when neither is present.
    """
    if _MISSING_BACKEND is not None:
        backend, package = _MISSING_BACKEND
        raise RenderingUnavailableError(
            f"MUJOCO_GL={backend} but its library is missing; install the Debian package "
            f"{package} (`apt-get install {package}`) or unset MUJOCO_GL"
        )
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        return chosen
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return "glfw"
    # PyOpenGL fixes its platform when first imported (dm_control, for one, may have chosen).
    platform = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    for backend, lib, _package in RENDER_BACKENDS:
        if platform and platform != backend:
            continue
        if _loadable(lib):
            _install_backend(backend)
            return backend
    raise RenderingUnavailableError(
        "rendering needs an off-screen OpenGL library and none was found; install the "
        "Debian package libosmesa6 (`apt-get install libosmesa6`, software rendering) or "
        "libegl1 with a GPU driver (training needs neither)"
    )


def _install_backend(backend: str) -> None:
    """Point gymnasium's and nafrl's MuJoCo renderers at ``backend``."""
    os.environ["MUJOCO_GL"] = backend  # gymnasium's MujocoRenderer reads it when it renders
    import mujoco

    if backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco.egl import GLContext
    # mujoco picked its context class when it was imported (before any back end was chosen);
    # its Renderer looks the class up here when it is built.
    from mujoco.rendering.classic import gl_context

    gl_context.GLContext = GLContext
    mujoco.GLContext = GLContext


__all__ = [
    "RENDER_BACKENDS",
    "blas_threads",
    "configure_process",
    "freeze_gc",
    "gc_frozen",
    "get_blas_threads",
    "select_render_backend",
    "set_blas_threads",
    "unfreeze_gc",
]
