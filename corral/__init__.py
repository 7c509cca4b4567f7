"""Corral: a self-hosted elastic MapReduce control plane."""

__version__ = "0.1.0"
