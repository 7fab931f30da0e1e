"""nafrl: continuous deep Q-learning with Normalized Advantage Functions (NAF) and
model-based acceleration, after Gu, Lillicrap, Sutskever & Levine (2016).

    >>> import nafrl
    >>> model = nafrl.NAF("InvertedPendulum-v5", seed=0)
    >>> model.learn(10_000, progress_bar=True)
    >>> action, _ = model.predict(obs, deterministic=True)

Importing the package registers the paper's tasks under the ``nafrl/`` Gymnasium
namespace (``nafrl/Cartpole-v1``, ``nafrl/Reacher-v1``, ...).
"""

import os

# Headless machines: MuJoCo renders off-screen through OSMesa (Debian: libosmesa6) unless the
# user chose a back end (egl, glfw) or has a display. Must be set before mujoco is imported.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "osmesa"

# XLA:CPU: run matrix products through YNNPACK, which makes the jitted updates of section 6's
# small networks 5-10% faster (bench/throughput.py). Read when JAX first starts its CPU
# back end, so it has no effect if JAX ran before nafrl was imported. Opt out with
# NAFRL_XLA_DEFAULTS=0, or override by naming the flag in XLA_FLAGS yourself.
if os.environ.get("NAFRL_XLA_DEFAULTS", "1") != "0" and "ynn_fusion_type" not in os.environ.get(
    "XLA_FLAGS", ""
):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_experimental_ynn_fusion_type=dot"
    ).strip()

from nafrl import envs as envs  # noqa: E402  # registers the nafrl/ task ids
from nafrl.api import DDPG, NAF  # noqa: E402

__all__ = ["NAF", "DDPG", "envs"]
__version__ = "0.1.0"
