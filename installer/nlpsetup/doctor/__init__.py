"""Diagnosis: what is wrong with the host, the envs and the recipes, and the fix."""
