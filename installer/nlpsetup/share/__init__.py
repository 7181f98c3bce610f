"""Sharing an env: lock files, pylock.toml, offline bundles."""
