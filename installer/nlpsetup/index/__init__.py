"""The package index: one client for simple-API pages, release files, hashes and upload times."""
