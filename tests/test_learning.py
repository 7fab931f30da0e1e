"""Learning thresholds on a small continuous task (fixed seed, CPU, about 20-40 s each).

InvertedPendulum-v5 returns 1 per step the pole stays up, at most 1000. A random policy
scores about 5-25. With seed 0 both agents balance for the full 1000 steps well before the
budgets below (measured: NAF from ~3.2k steps, DDPG from ~4.4-5k). NAF then stays up, so its
test asks the mean of the last three evaluations to reach 900; DDPG keeps oscillating on this
task (evaluations of 1000 alternate with dips, and where they fall changes with float
rounding, e.g. XLA's matmul kernels), so its test asks that an evaluation reaches 900.
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
    returns = [r["test_return"] for r in m.eval_log]
    if cls is nafrl.NAF:
        assert np.mean(returns[-3:]) >= 900, m.eval_log
    else:
        assert max(returns) >= 900, m.eval_log
    assert m.eval_log[0]["test_return"] < 100  # it was learned, not given
