"""Algorithms read top to bottom: :mod:`nafrl.algorithms.model_based` is Algorithm 2 of the
paper (imagination rollouts with fitted dynamics and optional iLQG exploration)."""
