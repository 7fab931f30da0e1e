"""Experiments: the paper's metrics, learning-curve plots, and (later) sweeps."""
