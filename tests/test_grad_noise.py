"""bench/grad_noise.py: the noise-scale estimate and the head split it measures."""

import importlib.util
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

_bench = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(_bench))
_spec = importlib.util.spec_from_file_location("grad_noise", _bench / "grad_noise.py")
assert _spec is not None and _spec.loader is not None
grad_noise = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(grad_noise)

import nafrl  # noqa: E402
from nafrl.types import Batch  # noqa: E402


def test_noise_scale_recovers_the_simple_noise_scale_of_a_known_distribution() -> None:
    # Minibatch gradients of m samples: g_k = G + eps_k / sqrt(m), eps ~ N(0, diag(s^2)), so
    # B = tr(Sigma) / |G|^2 = sum(s^2) / |G|^2 (McCandlish et al. 2018).
    rng = np.random.default_rng(0)
    dim, m, K = 50, 64, 4000
    G = rng.standard_normal(dim)
    s = rng.uniform(0.5, 3.0, dim)
    g = G + rng.standard_normal((K, dim)) * s / np.sqrt(m)
    B, norm, cos = grad_noise.noise_scale(g, m)
    want = float(np.sum(s**2) / np.sum(G**2))
    assert abs(B - want) / want < 0.05
    assert abs(norm - np.linalg.norm(G)) / np.linalg.norm(G) < 0.02
    # Noise-free gradients all point the same way.
    assert grad_noise.noise_scale(np.tile(G, (8, 1)), m)[2] > 0.999


def test_naf_mu_head_gets_no_gradient_when_the_actions_are_mu() -> None:
    # A = -1/2 (u - mu)^T P (u - mu) has zero gradient in mu at u = mu, so the mu head's
    # gradient vanishes exactly while V's and L's do not: a wrong head split would show.
    model = nafrl.NAF("Pendulum-v1", seed=0, checkpoint_interval=0)
    rng = np.random.default_rng(1)
    K, m, n = 3, 16, model.obs_dim
    obs = rng.standard_normal((K, m, n)).astype(np.float32)
    mu = np.stack([np.asarray(model.agent.policy(model.state, jnp.asarray(o))[0]) for o in obs])
    batches = Batch(
        obs,
        mu,
        rng.standard_normal((K, m)).astype(np.float32),
        rng.standard_normal((K, m, n)).astype(np.float32),
        np.zeros((K, m), np.float32),
    )
    g = grad_noise.gradient_fn(model)(model.state, batches)
    sizes = {h: g[h].shape[1] for h in g}
    params = model.state.params["params"]["StackedMLP_0"]
    assert sum(sizes.values()) == sum(int(np.prod(v.shape)) for v in params.values())
    assert float(jnp.max(jnp.abs(g["mu"]))) < 1e-5 * float(jnp.max(jnp.abs(g["V"])))
    assert float(jnp.max(jnp.abs(g["L"]))) > 0.0
