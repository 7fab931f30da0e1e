"""The task helpers behind ``nafrl tasks``, ``nafrl render`` and video recording."""

from __future__ import annotations

from pathlib import Path

import imageio
import imageio.v3 as iio
import numpy as np
import pytest

from nafrl.envs import TASKS
from nafrl.envs.cli import random_return, record_policy, render, tasks


def test_tasks_table_lists_every_task(capsys: pytest.CaptureFixture[str]) -> None:
    tasks(episodes=1)
    out = capsys.readouterr().out
    for task_id, spec in TASKS.items():
        line = next(ln for ln in out.splitlines() if task_id in ln)
        assert f" {spec.horizon} " in line


def test_random_return_matches_reward_scale() -> None:
    ret, sps = random_return("nafrl/Cartpole-v1", episodes=2)
    assert -2.3 < ret < -1.7  # hanging pole: about -0.02 per step for T = 100
    assert sps > 500
    with pytest.raises(ValueError, match="episodes=0"):
        random_return("nafrl/Cartpole-v1", episodes=0)


def test_tasks_table_shows_table1_beside_the_measured_random_return(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tasks(episodes=1)
    out = capsys.readouterr().out
    assert "paper random" in out and "paper best" in out
    cheetah = next(ln for ln in out.splitlines() if "nafrl/Cheetah-v1" in ln)
    assert " -0.3 " in cheetah and " 8.23 " in cheetah  # Table 1: random, better best
    swimmer = next(ln for ln in out.splitlines() if "nafrl/Swimmer6-v1" in ln)
    assert " -325 " in swimmer and " -172 " in swimmer


def test_render_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "reacher.png"
    render("nafrl/Reacher-v1", out, width=80, height=64)
    img = iio.imread(out)
    assert img.shape == (64, 80, 3) and img.std() > 5


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # ffmpeg subprocess; JAX loaded
def test_record_policy_writes_mp4(tmp_path: Path) -> None:
    out = tmp_path / "cartpole.mp4"
    returns = record_policy(
        "nafrl/Cartpole-v1", lambda o: np.zeros(1), out, episodes=1, width=64, height=64
    )
    assert len(returns) == 1 and returns[0] < -1.5
    with imageio.get_reader(out) as reader:
        assert reader.count_frames() == TASKS["nafrl/Cartpole-v1"].horizon + 1
        assert reader.get_data(0).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="unknown nafrl task"):
        record_policy("nafrl/Nope-v1", lambda o: o, tmp_path / "x.mp4")
