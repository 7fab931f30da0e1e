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


def test_mpc_replan_every_plans_once_per_k_steps_in_training(monkeypatch):
    from nafrl.planning.mpc import MPC

    plans: list[int] = []
    plan = MPC.plan
    monkeypatch.setattr(MPC, "plan", lambda self, x, t=0: plans.append(t) or plan(self, x, t))
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1", seed=0, model="true", ilqg_fraction=1.0, planner="mpc",
        mpc_replan_every=4, **SMALL,
    )  # fmt: skip
    T = m.env.unwrapped.horizon
    m.learn(T)
    assert plans == list(range(0, T, 4))
    assert m.episode_log[-1]["guided"] == 1 and m.episode_log[-1]["return"] > -1.35


def test_ilqg_with_linear_model_takes_about_the_requested_fraction():
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1", seed=1, model="linear", ilqg_fraction=0.5, refit_every=2, **SMALL
    )
    T = m.env.unwrapped.horizon
    m.learn(14 * T)
    guided = [r["guided"] for r in m.episode_log]
    assert guided[:2] == [0, 0]  # no controller before the first refit
    assert 3 <= sum(guided[2:]) <= 9  # 12 episodes at probability 0.5
    assert m.model_based.refits >= 6
    returns = np.array([r["return"] for r in m.episode_log])
    assert np.all(np.isfinite(returns))


def test_one_dynamics_model_serves_imagination_and_the_ilqg_controller(monkeypatch):
    """Algorithm 2 has one model M, refitted every n episodes and used by both imagination
    (line 16) and the iLQG step (line 23): one fit per refit, not one for each."""
    from nafrl.models import LinearGaussianDynamics

    fits = []
    fit = LinearGaussianDynamics.fit
    monkeypatch.setattr(
        LinearGaussianDynamics, "fit", lambda self, x, u: fits.append(id(self)) or fit(self, x, u)
    )
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1",
        seed=1,
        model="linear",
        ilqg_fraction=0.5,
        imagination_length=2,
        refit_every=2,
        **SMALL,
    )
    T = m.env.unwrapped.horizon
    m.learn(6 * T)
    mb = m.model_based
    assert len(fits) == 3 == mb.refits == mb.model.n_fits  # episodes 2, 4, 6
    assert set(fits) == {id(mb.model)}
    assert mb.controller is not None and mb.controller.K.shape[0] == T
    assert len(mb.fictional) > 0  # the same M imagined


def test_guided_actions_are_the_controller_mean_plus_the_exploration_noise():
    """Algorithm 2, line 11: u_t = mu'(x_t, t) + N_t for a guided episode too."""
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1", seed=0, model="linear", ilqg_fraction=1.0, refit_every=2, **SMALL
    )
    T = m.env.unwrapped.horizon
    m.learn(2 * T)  # the first refit: a controller exists from episode 3 on
    mb = m.model_based
    obs, _ = m.env.reset(seed=3)
    guided, _ = mb.begin_episode(obs, m.key)
    assert guided
    noise = np.full(m.act_dim, 0.2, np.float32)
    mean = np.asarray(mb.controller.mean_action(np.asarray(obs, np.float64), 0))
    u = mb.guided_action(obs, 0, noise)
    np.testing.assert_allclose(u, np.clip(mean + 0.2, -1, 1), atol=1e-5)
    np.testing.assert_allclose(
        mb.guided_action(obs, 0, np.zeros(m.act_dim)), np.clip(mean, -1, 1), atol=1e-5
    )
