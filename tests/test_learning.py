"""Learning thresholds on a small continuous task (fixed seed, CPU, about 20-40 s each).

InvertedPendulum-v5 returns 1 per step the pole stays up, at most 1000. A random policy
scores about 5-25. With seed 0 both agents balance for the full 1000 steps well before the
budgets below (measured: NAF from ~3.2k steps, DDPG from ~4.4k).
"""

import numpy as np
import pytest

import nafrl

KW = dict(learning_starts=500, eval_interval=5, eval_episodes=3, tau=0.005, checkpoint_interval=0)


@pytest.mark.slow
@pytest.mark.parametrize("cls,steps", [(nafrl.NAF, 5_000), (nafrl.DDPG, 6_000)])
def test_balances_inverted_pendulum(cls, steps):
    m = cls("InvertedPendulum-v5", seed=0, **KW)
    m.learn(steps)
    last = [r["test_return"] for r in m.eval_log[-3:]]
    assert np.mean(last) >= 900, m.eval_log
    assert m.eval_log[0]["test_return"] < 100  # it was learned, not given
