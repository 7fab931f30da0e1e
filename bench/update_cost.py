"""Cost of a config option on NAF's jitted update, measured interleaved in one process.

    python bench/update_cost.py --option layer_norm=true [--obs 17 --act 6 --reps 7]

Times ``--updates`` jitted updates (I = 5 minibatches of 64 per call, as in training) of
the defaults and of the defaults plus the option, alternating, ``--reps`` times; prints the
median microseconds per update of each and their ratio. Alternating makes load from other
processes fall on both alike.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from reliability import parse_variant  # bench/ is on the path when run as a script

from nafrl.agents import make_agent
from nafrl.config import make_config
from nafrl.types import Batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--option", required=True, help="field=value[,field=value...]")
    ap.add_argument("--obs", type=int, default=17)
    ap.add_argument("--act", type=int, default=6)
    ap.add_argument("--updates", type=int, default=400)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    I, m = 5, 64
    batch = Batch(
        rng.standard_normal((I, m, args.obs)).astype(np.float32),
        rng.uniform(-1, 1, (I, m, args.act)).astype(np.float32),
        rng.standard_normal((I, m)).astype(np.float32),
        rng.standard_normal((I, m, args.obs)).astype(np.float32),
        np.zeros((I, m), np.float32),
    )
    runners = {}
    for name, overrides in (("defaults", {}), (args.option, parse_variant(args.option)[1])):
        agent = make_agent("naf", make_config(**overrides), args.obs, args.act)

        def many(state, b, agent=agent):  # noqa: ANN001, ANN202
            return jax.lax.scan(lambda s, x: (agent.update(s, x)[0], None), state, b)[0]

        step = jax.jit(many)
        state = agent.init(jax.random.PRNGKey(0))
        state = step(state, batch)
        jax.block_until_ready(state)
        runners[name] = (step, state)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.reps):
        for name, (step, state) in runners.items():
            t0 = time.perf_counter()
            for _ in range(args.updates // I):
                state = step(state, batch)
            jax.block_until_ready(state)
            times[name].append((time.perf_counter() - t0) / args.updates * 1e6)
            runners[name] = (step, state)
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k, v in med.items():
        print(
            f"{k:24s} {v:7.1f} us per update (median of {args.reps}; all: "
            f"{', '.join(f'{t:.0f}' for t in times[k])})"
        )
    print(f"ratio {args.option} / defaults: {med[args.option] / med['defaults']:.3f}")


if __name__ == "__main__":
    main()
