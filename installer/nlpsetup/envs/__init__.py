"""Envs on disk: their layout and names, the manifest that records them, the store, kernels."""
