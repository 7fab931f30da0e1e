"""Helpers for the scripted controllers (finite-difference linearisation, LQR, planar IK)
and planar forward kinematics for the tasks' observation projections.

The controllers themselves live beside their tasks (``scripted_policy`` in each
task module); they are baselines that clearly beat a random agent, used in
tests and as sanity checks for learning curves.
"""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np
import scipy.linalg

from nafrl.envs.base import MujocoTaskEnv


def linearize(
    env: MujocoTaskEnv, qpos: np.ndarray, qvel: np.ndarray, ctrl: np.ndarray, eps: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """Discrete-time A, B of one env step around (qpos, qvel, ctrl), state s = [qpos, qvel].

    Central finite differences through ``frame_skip`` physics substeps on a
    scratch ``MjData`` (the environment's own data is not touched). Needs nq == nv.
    """
    m = env.model
    d = mujoco.MjData(m)
    nq, nv, nu = m.nq, m.nv, m.nu
    if nq != nv:
        raise ValueError("linearize() needs nq == nv (no free or ball joints)")

    def f(s: np.ndarray, u: np.ndarray) -> np.ndarray:
        mujoco.mj_resetData(m, d)
        d.qpos[:] = s[:nq]
        d.qvel[:] = s[nq:]
        d.ctrl[:] = u
        mujoco.mj_step(m, d, env.frame_skip)
        return np.concatenate([d.qpos, d.qvel])

    s0 = np.concatenate([qpos, qvel])
    A = np.zeros((nq + nv, nq + nv))
    B = np.zeros((nq + nv, nu))
    for i in range(nq + nv):
        e = np.zeros(nq + nv)
        e[i] = eps
        A[:, i] = (f(s0 + e, ctrl) - f(s0 - e, ctrl)) / (2 * eps)
    for j in range(nu):
        e = np.zeros(nu)
        e[j] = eps
        B[:, j] = (f(s0, ctrl + e) - f(s0, ctrl - e)) / (2 * eps)
    return A, B


def dlqr(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Gain K of the infinite-horizon discrete LQR, u = -K s."""
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Angle(s) wrapped to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def planar_fk(q: Any, lengths: tuple[float, ...]) -> tuple[Any, Any]:
    """End point (x, y) of a planar chain, in JAX: relative joint angles q (..., n), link
    lengths (n,), base at the origin. The inverse of :func:`planar_ik3` for n = 3."""
    import jax.numpy as jnp

    a = jnp.cumsum(q, axis=-1)  # absolute link angles
    lengths_ = jnp.asarray(lengths, q.dtype)
    return (lengths_ * jnp.cos(a)).sum(-1), (lengths_ * jnp.sin(a)).sum(-1)


def planar_ik3(
    x: float,
    y: float,
    phi: float,
    lengths: tuple[float, float, float],
    elbow: float = 1.0,
    tip: tuple[float, float] | None = None,
) -> np.ndarray | None:
    """Joint angles of a planar 3-link arm putting its tip at (x, y) with heading ``phi``.

    Joint i rotates about z and angles accumulate (heading of link 3 =
    q0 + q1 + q2). ``tip`` is the controlled point in link 3's frame (default
    its end, (l3, 0)). ``elbow`` = +1 or -1 picks the elbow branch. Returns
    None if unreachable.
    """
    l1, l2, l3 = lengths
    tx, ty = (l3, 0.0) if tip is None else tip
    c, s = math.cos(phi), math.sin(phi)
    wx, wy = x - (c * tx - s * ty), y - (s * tx + c * ty)
    c2 = (wx * wx + wy * wy - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if not -1.0 <= c2 <= 1.0:
        return None
    q1 = elbow * math.acos(c2)
    q0 = math.atan2(wy, wx) - math.atan2(l2 * math.sin(q1), l1 + l2 * math.cos(q1))
    q2 = phi - q0 - q1
    return np.asarray(wrap_angle(np.array([q0, q1, q2])), dtype=np.float64)


def arm_ik(
    x: float,
    y: float,
    q_now: np.ndarray,
    lengths: tuple[float, float, float],
    limit: float,
    headings: np.ndarray | None = None,
    tip: tuple[float, float] | None = None,
) -> np.ndarray | None:
    """Reachable IK solution of a planar 3-link arm closest to ``q_now``.

    Searches tip headings (default: 72 around the circle) and both elbow
    branches, keeps solutions with |q1|, |q2| <= ``limit`` and returns the one
    nearest to ``q_now`` (joint 0 compared modulo 2 pi), or None. ``tip`` as in
    :func:`planar_ik3`.
    """
    if headings is None:
        headings = np.linspace(-np.pi, np.pi, 72, endpoint=False)
    best, best_cost = None, np.inf
    for phi in headings:
        for elbow in (1.0, -1.0):
            q = planar_ik3(x, y, float(phi), lengths, elbow, tip)
            if q is None or abs(q[1]) > limit or abs(q[2]) > limit:
                continue
            dq = q - q_now
            dq[0] = float(wrap_angle(dq[0]))
            cost = float(dq @ dq)
            if cost < best_cost:
                best, best_cost = q, cost
    return best


def arm_pd(q: np.ndarray, qd: np.ndarray, q_ref: np.ndarray, kp: float, kd: float) -> np.ndarray:
    """Joint PD action in [-1, 1] (joint 0 is continuous, its error is wrapped)."""
    err = q_ref - q
    err[0] = float(wrap_angle(err[0]))
    return np.clip(kp * err - kd * qd, -1.0, 1.0).astype(np.float32)
