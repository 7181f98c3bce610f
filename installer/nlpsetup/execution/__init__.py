"""Execution: build an env as one transaction, change it, run its smoke checks, verify it."""
