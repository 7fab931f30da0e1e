"""Planning with dynamics models (paper section 3, appendix 8.1): iLQG, the KL-constrained
step and MPC (appendix 8.6). Model-guided exploration (section 5.1) is part of Algorithm 2,
in :mod:`nafrl.algorithms.model_based`.

One module per concept:

* :mod:`~nafrl.planning.controller` -- the linear-Gaussian controller of equations (4)/(6).
* :mod:`~nafrl.planning.lqr` -- reward expansion, the backward pass of equation (5),
  Gaussian forward passes and closed-loop rollouts, shared by both solvers.
* :mod:`~nafrl.planning.ilqg` -- unconstrained iLQG with line search and regularisation.
* :mod:`~nafrl.planning.kl_step` -- one KL-constrained step against a previous controller.
* :mod:`~nafrl.planning.mpc` -- receding-horizon iLQG.

    >>> from nafrl.planning import ilqg, kl_constrained_step, MPC
    >>> ctrl = ilqg(model, env.unwrapped.reward, x0, u_init)        # K, k, x_hat, u_hat, cov
    >>> ctrl, info = kl_constrained_step(model, reward, x0, ctrl, kl_step=0.2)

Note: ``nafrl.planning.ilqg`` is the function; the module is ``nafrl.planning.ilqg`` in
``sys.modules`` (import names from it with ``from nafrl.planning.ilqg import ...``).
"""

from nafrl.planning.controller import LinearGaussianController
from nafrl.planning.ilqg import ILQGInfo, ilqg, ilqg_solve
from nafrl.planning.kl_step import KLStepInfo, kl_constrained_step, trajectory_kl
from nafrl.planning.lqr import (
    QuadraticReward,
    backward_pass,
    evaluate_controller,
    forward_marginals,
    quadratize,
    rollout_controller,
)
from nafrl.planning.mpc import MPC

__all__ = [
    "MPC",
    "ILQGInfo",
    "KLStepInfo",
    "LinearGaussianController",
    "QuadraticReward",
    "backward_pass",
    "evaluate_controller",
    "forward_marginals",
    "ilqg",
    "ilqg_solve",
    "kl_constrained_step",
    "quadratize",
    "rollout_controller",
    "trajectory_kl",
]
