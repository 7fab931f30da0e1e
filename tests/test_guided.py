"""Model-guided exploration (section 5.1) inside the NAF training loop."""

import numpy as np

import nafrl

SMALL = dict(
    hidden_sizes=(32, 32),
    batch_size=16,
    learning_starts=100,
    eval_interval=0,
    checkpoint_interval=0,
)


def test_mpc_with_true_model_drives_every_episode_when_fraction_is_one():
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1", seed=0, model="true", ilqg_fraction=1.0, planner="mpc", **SMALL
    )
    T = m.env.unwrapped.horizon
    m.learn(T)
    ep = m.episode_log[-1]
    assert ep["guided"] == 1
    # MPC with the simulator (sampling its Gaussian, so exploring) nears the target:
    # random scores about -2.6, the scripted controller -0.20, noiseless MPC about -0.18.
    assert ep["return"] > -1.35, ep
    assert len(m.buffer) == T  # its transitions are ordinary replay data
    assert m.model_based.model is None  # no imagination: no model fitted for it


def test_ilqg_with_linear_model_takes_about_the_requested_fraction():
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1", seed=1, model="linear", ilqg_fraction=0.5, refit_every=2, **SMALL
    )
    T = m.env.unwrapped.horizon
    m.learn(14 * T)
    guided = [r["guided"] for r in m.episode_log]
    assert guided[:2] == [0, 0]  # no controller before the first refit
    assert 3 <= sum(guided[2:]) <= 9  # 12 episodes at probability 0.5
    assert m.model_based.guide.refits >= 6
    returns = np.array([r["return"] for r in m.episode_log])
    assert np.all(np.isfinite(returns))
