"""Replay buffers: a fixed-capacity ring of contiguous float32 arrays with uniform sampling.

The same class serves as the real buffer R of Algorithm 1 and the fictional buffer R_f of
Algorithm 2. Transitions store (x, u, r, x', terminated) plus optional extra per-transition
fields (for example the time index t, or the simulator state for the true-dynamics model).
Sampling uses an explicit ``numpy.random.Generator`` so runs are reproducible and resumable.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nafrl.types import Batch

_CORE = ("obs", "action", "reward", "next_obs", "terminated")


class ReplayBuffer:
    """Ring buffer of transitions. ``capacity`` transitions of ``obs_dim``/``act_dim`` floats.

    Memory is 4 * (2 obs_dim + act_dim + 2) bytes per transition (plus extras): a million
    HalfCheetah transitions (obs 17, action 6) take 168 MB.
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        extra_dims: Mapping[str, int] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity, self.obs_dim, self.act_dim = int(capacity), int(obs_dim), int(act_dim)
        self.extra_dims = dict(extra_dims or {})
        self.data: dict[str, np.ndarray] = {
            "obs": np.zeros((capacity, obs_dim), np.float32),
            "action": np.zeros((capacity, act_dim), np.float32),
            "reward": np.zeros((capacity,), np.float32),
            "next_obs": np.zeros((capacity, obs_dim), np.float32),
            "terminated": np.zeros((capacity,), np.float32),
        }
        for name, dim in self.extra_dims.items():
            self.data[name] = np.zeros((capacity, dim), np.float64)
        self.size = 0  # number of valid transitions
        self.pos = 0  # next slot to write

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.data.values())

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        **extra: np.ndarray,
    ) -> None:
        """Store one transition, overwriting the oldest when full."""
        i = self.pos
        d = self.data
        d["obs"][i] = obs
        d["action"][i] = action
        d["reward"][i] = reward
        d["next_obs"][i] = next_obs
        d["terminated"][i] = terminated
        for name, value in extra.items():
            d[name][i] = value
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_batch(self, **arrays: np.ndarray) -> None:
        """Store N transitions at once (arrays with leading axis N), wrapping around."""
        n = len(arrays["obs"])
        idx = (self.pos + np.arange(n)) % self.capacity
        for name, value in arrays.items():
            self.data[name][idx] = value
        self.pos = int((self.pos + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample_indices(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=shape)

    def sample(self, rng: np.random.Generator, batch_size: int, num_batches: int = 1) -> Batch:
        """Uniformly sample ``num_batches`` minibatches: arrays of shape (num_batches, m, ...)."""
        idx = self.sample_indices(rng, (num_batches, batch_size))
        d = self.data
        return Batch(
            d["obs"][idx],
            d["action"][idx],
            d["reward"][idx],
            d["next_obs"][idx],
            d["terminated"][idx],
        )

    def presample(
        self, rng: np.random.Generator, batch_size: int, num_batches: int = 1
    ) -> tuple[np.ndarray, Batch]:
        """Draw now the minibatches that :meth:`sample` would draw after one more
        :meth:`add` (the same random numbers, the same rows), so the training loop can
        gather them while the previous jitted update is still running. The one row the
        coming ``add`` overwrites is filled in by :meth:`complete`."""
        size = min(self.size + 1, self.capacity)
        idx = rng.integers(0, size, size=(num_batches, batch_size))
        d = self.data
        return idx, Batch(*(d[name][idx] for name in _CORE))

    def complete(self, pending: tuple[np.ndarray, Batch]) -> Batch:
        """Finish a :meth:`presample` after exactly one ``add``."""
        idx, batch = pending
        slot = (self.pos - 1) % self.capacity
        hit = idx == slot
        if hit.any():
            for field, name in zip(batch, _CORE, strict=True):
                field[hit] = self.data[name][slot]
        return batch

    def gather(self, idx: np.ndarray, fields: tuple[str, ...] = _CORE) -> dict[str, np.ndarray]:
        return {name: self.data[name][idx] for name in fields}

    # --- checkpointing: only the filled part ---
    def state_dict(self) -> dict[str, np.ndarray]:
        """The filled slots in storage order plus the write position, so a loaded buffer
        samples exactly the same transitions for the same random numbers."""
        return {
            **{name: a[: self.size] for name, a in self.data.items()},
            "_pos": np.array(self.pos),
        }

    def chronological(self, name: str) -> np.ndarray:
        """One field of the stored transitions, oldest first."""
        start = self.pos if self.size == self.capacity else 0
        return self.data[name][(start + np.arange(self.size)) % self.capacity]

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        n = len(state["obs"])
        if n > self.capacity:
            raise ValueError(
                f"checkpoint holds {n} transitions, buffer capacity is {self.capacity}"
            )
        for name, a in self.data.items():
            if name not in state:
                raise ValueError(f"checkpoint buffer lacks field {name!r}")
            if state[name].shape[1:] != a.shape[1:]:
                raise ValueError(
                    f"checkpoint buffer field {name!r} has shape {state[name].shape[1:]}, "
                    f"expected {a.shape[1:]}"
                )
            a[:n] = state[name]
        self.size = n
        self.pos = int(state["_pos"]) if "_pos" in state else n % self.capacity
