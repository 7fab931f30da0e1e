"""Planning with dynamics models: iLQG with a KL trust region (section 3, appendix 8.1),
MPC (appendix 8.6). Model-guided exploration (section 5.1) is part of Algorithm 2, in
:mod:`nafrl.algorithms.model_based`.

    >>> from nafrl.planning import ilqg, MPC
    >>> ctrl = ilqg(model, env.unwrapped.reward, x0, u_init)        # K, k, x_hat, u_hat, cov
    >>> ctrl = ilqg(model, reward, x0, u_init, prev=ctrl, kl_step=0.2)  # KL-constrained step

Note: ``nafrl.planning.ilqg`` is the function; the module is ``nafrl.planning.ilqg`` in
``sys.modules`` (import names from it with ``from nafrl.planning.ilqg import ...``).
"""

from nafrl.planning.ilqg import (
    ILQGInfo,
    LinearGaussianController,
    QuadraticReward,
    backward_pass,
    evaluate_controller,
    forward_marginals,
    ilqg,
    ilqg_solve,
    quadratize,
    trajectory_kl,
)
from nafrl.planning.mpc import MPC

__all__ = [
    "MPC",
    "ILQGInfo",
    "LinearGaussianController",
    "QuadraticReward",
    "backward_pass",
    "evaluate_controller",
    "forward_marginals",
    "ilqg",
    "ilqg_solve",
    "quadratize",
    "trajectory_kl",
]
