"""Dynamics models (paper section 5) behind one small interface (:mod:`nafrl.models.base`).

* :class:`SimulatorDynamics` -- the task's own simulator (true model, section 6.2).
* :class:`LinearGaussianDynamics` -- per-time-step linear-Gaussian fits, refitted every n
  episodes, with a GMM or Gaussian prior (section 5.3).
* :class:`NeuralDynamics` -- a global MLP model (the failing baseline of section 6.3).

Every model has ``fit(x (E, T+1, dx), u (E, T, du)) -> self``, a batched
``step(x, u, t, key=None)`` and ``linearize(x_hat, u_hat, t0) -> LinearDynamics``.
"""

from nafrl.models.base import DynamicsModel, LinearDynamics, ObservedDynamics
from nafrl.models.linear_gaussian import LinearGaussianDynamics
from nafrl.models.neural import NeuralDynamics
from nafrl.models.priors import NIW, GaussianPrior, GMMPrior
from nafrl.models.simulator import SimulatorDynamics

__all__ = [
    "NIW",
    "DynamicsModel",
    "GMMPrior",
    "GaussianPrior",
    "LinearDynamics",
    "LinearGaussianDynamics",
    "NeuralDynamics",
    "ObservedDynamics",
    "SimulatorDynamics",
]
