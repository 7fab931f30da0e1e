"""nafrl: continuous deep Q-learning with Normalized Advantage Functions (NAF) and
model-based acceleration, after Gu, Lillicrap, Sutskever & Levine (2016).

    >>> import nafrl
    >>> model = nafrl.NAF("InvertedPendulum-v5", seed=0)
    >>> model.learn(10_000, progress_bar=True)
    >>> action, _ = model.predict(obs, deterministic=True)

Importing the package registers the paper's tasks under the ``nafrl/`` Gymnasium
namespace (``nafrl/Cartpole-v1``, ``nafrl/Reacher-v1``, ...) and applies the process-wide
settings of :mod:`nafrl.runtime` (before JAX starts). No rendering back end is chosen here:
training needs no OpenGL library.
"""

from nafrl import runtime as runtime

runtime.configure_process()

from nafrl import envs as envs  # noqa: E402  # registers the nafrl/ task ids
from nafrl.api import DDPG, NAF  # noqa: E402
from nafrl.errors import NafrlError  # noqa: E402

__all__ = ["NAF", "DDPG", "NafrlError", "envs", "runtime"]
__version__ = "0.1.0"
