"""Learning thresholds on a small continuous task (CPU, about 20-60 s each), all learning
options at their defaults.

InvertedPendulum-v5 returns 1 per step the pole stays up, at most 1000. A random policy
scores about 5-25. NAF's defaults (issue 13: obs_norm, layer_norm, min_log_diag=-1,
target_smoothing=0.15, uniform warm-up) reach 1000 on seeds 0-4 within 1.1-3.6k steps and
end at 1000 at 20k steps (bench/results/reliability/warmup/InvertedPendulum-v5);
its test asks the mean of the last three evaluations at 10k steps to reach 900, and the
seed-robustness test asks seeds 0-2 to reach 900 within 6k. DDPG keeps oscillating on this
task (evaluations of 1000 alternate with dips, and where they fall changes with float
rounding, e.g. XLA's matmul kernels), so its test asks that an evaluation reaches 900."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import nafrl
from nafrl.experiments.sweep import THREAD_ENV

KW = dict(eval_interval=5, eval_episodes=3, checkpoint_interval=0)  # learning options: defaults


@pytest.mark.slow
@pytest.mark.parametrize("cls,steps", [(nafrl.NAF, 10_000), (nafrl.DDPG, 6_000)])
def test_balances_inverted_pendulum(cls, steps):
    m = cls("InvertedPendulum-v5", seed=0, **KW)
    m.learn(steps)
    returns = [r["test_return"] for r in m.eval_log]
    if cls is nafrl.NAF:
        assert np.mean(returns[-3:]) >= 900, m.eval_log
    else:
        assert max(returns) >= 900, m.eval_log
    assert m.eval_log[0]["test_return"] < 100  # it was learned, not given


# One seed per process (at most two run at once on the 2-core machine), each stopping at its
# first evaluation that reaches the threshold; prints that evaluation log as JSON.
_SEED_RUN = """
import json, sys
import nafrl
seed, steps, threshold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
m = nafrl.NAF("InvertedPendulum-v5", seed=seed, eval_interval=5, eval_episodes=3,
              checkpoint_interval=0)
m.learn(steps, callback=lambda m: not (m.eval_log and m.eval_log[-1]["test_return"] >= threshold))
print(json.dumps(m.eval_log))
"""
ROBUST_SEEDS, ROBUST_STEPS, ROBUST_THRESHOLD = (0, 1, 2), 6_000, 900.0


@pytest.mark.slow
def test_naf_defaults_balance_inverted_pendulum_on_every_seed():
    """Issue 13: with all defaults, NAF on 3 seeds each reaches a test return of 900 (of
    1000) within ROBUST_STEPS environment steps (measured: bench/results/reliability/)."""
    env = {**os.environ, **THREAD_ENV}
    args = [str(ROBUST_STEPS), str(ROBUST_THRESHOLD)]
    t0 = time.perf_counter()
    logs = {}
    pending = list(ROBUST_SEEDS)
    running: dict[int, subprocess.Popen] = {}
    while pending or running:
        while pending and len(running) < 2:
            s = pending.pop(0)
            cmd = [sys.executable, "-c", _SEED_RUN, str(s), *args]
            running[s] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        s = next(iter(running))
        out, _ = running.pop(s).communicate(timeout=300)
        logs[s] = json.loads(out.strip().splitlines()[-1])
    for s, log in logs.items():
        returns = [r["test_return"] for r in log]
        assert returns[0] < 100, (s, log)  # it was learned, not given
        assert max(returns) >= ROBUST_THRESHOLD, (s, log)
        assert log[-1]["total_steps"] <= ROBUST_STEPS, (s, log)
    reached = [log[-1]["total_steps"] for log in logs.values()]
    print(f"seeds {list(logs)} reached {ROBUST_THRESHOLD} at steps {reached}", end=" ")
    print(f"in {time.perf_counter() - t0:.0f} s")
