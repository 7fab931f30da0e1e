import numpy as np

from nafrl.experiments.metrics import best_and_episodes, episodes_to_reach, smooth, threshold


def test_threshold_and_episodes_for_negative_and_positive_rewards():
    assert np.isclose(threshold(-0.4), -0.42) and threshold(10.0) == 9.5
    eps = [10, 20, 30, 40, 50]
    best, n = best_and_episodes(eps, [-2.0, -1.0, -0.43, -0.41, -0.40])
    assert best == -0.40 and n == 40  # -0.43 < -0.42 <= -0.41
    best, n = best_and_episodes(eps, [1, 5, 9.6, 8, 10])
    assert best == 10 and n == 30
    assert np.isnan(episodes_to_reach(eps, [1, 2, 3, 4, 5], 6))


def test_smooth_is_trailing_mean():
    np.testing.assert_allclose(smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(smooth([1, 2, 3], 1), [1, 2, 3])
