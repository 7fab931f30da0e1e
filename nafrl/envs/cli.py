"""Command-line helpers for the tasks (wired into the ``nafrl`` CLI by :mod:`nafrl.cli`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import gymnasium as gym
import numpy as np

from nafrl.checkpoint import process_umask
from nafrl.env_utils import check_spaces, extra_hint, make_env
from nafrl.envs.registry import TASKS, make
from nafrl.errors import EnvError, StorageError
from nafrl.rollout import run_episode
from nafrl.runtime import select_render_backend

if TYPE_CHECKING:
    from imageio.core.format import Format

__all__ = ["random_return", "record_policy", "render", "tasks"]


def random_return(task_id: str, episodes: int = 50, seed: int = 0) -> tuple[float, float]:
    """(mean return of a uniform-random agent over ``episodes``, env steps per second).

    Episode i starts from ``reset(seed=seed + i)``; the actions come from one
    ``numpy.random.default_rng(seed)`` stream, so the result is reproducible.
    """
    if episodes < 1:
        raise ValueError(f"random_return: episodes={episodes}; expected an integer >= 1")
    env = make(task_id)
    rng = np.random.default_rng(seed)
    returns, steps, elapsed = [], 0, 0.0
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            a = rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)
            t0 = time.perf_counter()
            _, r, terminated, truncated, _ = env.step(a)
            elapsed += time.perf_counter() - t0
            total, steps, done = total + float(r), steps + 1, terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns)), steps / max(elapsed, 1e-12)


def tasks(episodes: int = 50) -> None:
    """Print every registered task: sizes, horizon T, the random-agent return measured over
    ``episodes`` seeded episodes beside Table 1's random and best values, and env steps/s.

    Single-target variants (section 6.3) show their parent domain's Table 1 row.
    """
    from rich.console import Console
    from rich.table import Table

    from nafrl.experiments.paper import TABLE1, domain_of

    table = Table(title=f"nafrl tasks (paper Table 3); random return over {episodes} episodes")
    cols = ("id", "obs", "act", "T", "tags", "r(x,u)", "random", "paper random", "paper best",
            "steps/s")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("id", "tags") else "right", no_wrap=True)
    for task_id, spec in TASKS.items():
        env = make(task_id)
        n_obs, n_act = check_spaces(env, task_id)
        env.close()
        ret, sps = random_return(task_id, episodes=episodes)
        domain = domain_of(task_id)
        row = TABLE1.get(domain) if domain is not None else None
        table.add_row(
            task_id,
            str(n_obs),
            str(n_act),
            str(spec.horizon),
            ",".join(spec.tags),
            "yes" if spec.has_reward_fn else "no",
            f"{ret:.3g}",
            "-" if row is None else f"{row.random:.3g}",
            "-" if row is None else f"{row.best:.3g}",
            f"{sps:,.0f}",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    console.print(table)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4",)


def check_output(out: Path, suffixes: tuple[str, ...], what: str) -> Path:
    """``out`` as a Path whose suffix is one of ``suffixes``, that is not a folder and whose
    parent folder exists or can be created and is writable; else one clear error."""
    out = Path(out)
    if out.is_dir():
        raise EnvError(
            f"--out {out} is a folder; give a file name like {out / ('x' + suffixes[0])}"
        )
    if out.suffix.lower() not in suffixes:
        raise EnvError(
            f"--out {out}: a {what} file name needs one of the extensions {', '.join(suffixes)}"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"--out {out}: cannot create folder {out.parent}: {e.strerror}") from e
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise StorageError(f"--out {out}: the folder {out.parent} is not writable")
    return out


@contextlib.contextmanager
def _atomic_output(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out`` (same extension) renamed to ``out`` when the block
    succeeds, removed when it fails: no half-written or empty files."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~process_umask())
        os.replace(tmp, out)
    except OSError as e:
        raise StorageError(f"cannot write {out}: {e.strerror or e}") from e
    finally:
        Path(tmp).unlink(missing_ok=True)


def _task(task_id: str) -> str:
    if task_id not in TASKS:
        raise EnvError(
            f"unknown nafrl task {task_id!r}; accepted: {', '.join(TASKS)} (see `nafrl tasks`)"
        )
    return task_id


def render(task_id: str, out: Path, seed: int = 0, width: int = 480, height: int = 480) -> None:
    """Save a PNG of ``task_id`` right after ``reset(seed=seed)``."""
    import imageio.v3 as iio

    _task(task_id)
    out = check_output(out, IMAGE_SUFFIXES, "picture")
    select_render_backend()
    env = make(task_id, render_mode="rgb_array", width=width, height=height)
    try:
        env.reset(seed=seed)
        frame = _rgb_frame(env)
    finally:
        env.close()
    with _atomic_output(out) as tmp:
        iio.imwrite(tmp, frame)
    print(f"wrote {out}")


def _rgb_frame(env: gym.Env) -> np.ndarray:
    """``env.render()`` of an env made with ``render_mode='rgb_array'``: one RGB array."""
    frame = env.render()
    if not isinstance(frame, np.ndarray):
        raise EnvError(
            f"{type(env.unwrapped).__name__}.render() returned {type(frame).__name__}; "
            "expected an RGB array (render_mode='rgb_array')"
        )
    return frame


def _recording_env(task_id: str, width: int, height: int) -> gym.Env:
    """An ``rgb_array`` env of a nafrl task or of any Gymnasium id that can render one."""
    if task_id.startswith("nafrl/"):
        _task(task_id)
        select_render_backend()
        return make(task_id, render_mode="rgb_array", width=width, height=height)
    if task_id not in gym.envs.registry:
        raise EnvError(f"unknown env id {task_id!r}; accepted: a registered Gymnasium id")
    entry = str(gym.spec(task_id).entry_point)
    if entry.startswith("gymnasium.envs.mujoco"):
        select_render_backend()
        return make_env(task_id, render_mode="rgb_array", width=width, height=height)
    env = make_env(task_id, render_mode="rgb_array")
    if "rgb_array" not in env.metadata.get("render_modes", ()):
        env.close()
        raise EnvError(f"{task_id} cannot render frames (render_mode='rgb_array'), so no video")
    try:  # renderers of non-MuJoCo envs load their optional dependency on first use
        env.reset(seed=0)
        env.render()
    except (gym.error.DependencyNotInstalled, ImportError) as e:
        env.close()
        raise EnvError(f"recording {task_id} needs {extra_hint(task_id)}: {e}") from e
    return env


def record_policy(
    task_id: str,
    policy: Callable[[np.ndarray], np.ndarray] | None,
    out: Path,
    episodes: int = 1,
    seed: int = 0,
    width: int = 320,
    height: int = 320,
) -> list[float]:
    """Write an MP4 of ``policy`` (obs -> action) for ``episodes`` episodes; returns the returns.

    ``policy=None`` uses the task's scripted controller. The file appears only when complete.
    """
    import imageio

    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise EnvError(f"invalid episodes={episodes!r}: expected an integer >= 1")
    out = check_output(out, VIDEO_SUFFIXES, "video")
    if policy is None:
        scripted = TASKS[task_id].scripted if task_id in TASKS else None
        if scripted is None:
            raise EnvError(f"{task_id} has no scripted controller; pass a policy")
        env = _recording_env(task_id, width, height)
        policy = scripted(env)
    else:
        env = _recording_env(task_id, width, height)
    fps = env.metadata.get("render_fps", 20)
    returns = []
    try:
        with (
            _atomic_output(out) as tmp,
            imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1) as opened,
        ):
            # imageio's stub types Writer.__enter__ as returning its base class; it is the writer.
            writer = cast("Format.Writer", opened)
            for ep in range(episodes):
                result = run_episode(
                    env,
                    lambda o, t: policy(o),
                    seed=seed + ep,
                    on_step=lambda o, r: writer.append_data(_rgb_frame(env)),
                )
                returns.append(result.total_reward)
    finally:
        env.close()
    print(f"wrote {out} ({episodes} episode(s), returns {[round(r, 3) for r in returns]})")
    return returns
