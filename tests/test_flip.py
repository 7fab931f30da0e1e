"""bench/flip.py: the pose test that tells a cheetah running on its back from an upright one."""

import sys
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import flip  # noqa: E402  (bench/ is not a package; flip.py imports its neighbours)


class _PitchScript(gym.Env):
    """Replays a fixed sequence of torso pitches (qpos[2]) with reward 1 per step."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
    action_space = gym.spaces.Box(-1.0, 1.0, (1,))

    def __init__(self, pitches: list[float]) -> None:
        self.pitches = pitches
        self.data = SimpleNamespace(qpos=np.zeros(3))

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.data.qpos[2] = self.pitches[self.t]
        self.t += 1
        return np.zeros(1, np.float32), 1.0, False, self.t == len(self.pitches), {}


class _Zero:
    def predict(self, obs, deterministic=True):
        return np.zeros(1, np.float32), None


def test_pitch_winding_past_pi_is_on_the_back_and_averages_to_pi_not_zero() -> None:
    # A cheetah lying on its back rocks across +-pi; rooty winds (3.0, 3.3, -3.0 + 2 pi ...).
    # The arithmetic mean of the wrapped angles (+-3) would be ~0, i.e. "upright".
    pitches = [3.0, 3.3, 3.0, 3.3, 2.9 - 2 * np.pi, 3.4 - 2 * np.pi]
    row = flip.pose_test(_Zero(), _PitchScript(pitches))
    assert row["test_return"] == 6.0
    assert row["on_back"] == 1.0
    assert abs(abs(row["pitch_mean"]) - np.pi) < 0.1


def test_upright_rocking_is_not_on_the_back() -> None:
    pitches = [0.2, -0.3, 0.1, 1.4, -1.4, 0.0, 1.7, 0.0]
    row = flip.pose_test(_Zero(), _PitchScript(pitches))
    assert row["on_back"] == pytest.approx(1 / 8)  # one step past pi/2
    assert row["pitch_mean"] == pytest.approx(np.angle(np.mean(np.exp(1j * np.array(pitches)))))
    assert abs(row["pitch_mean"]) < 0.2
