"""Container images: a verified env carried to a cluster, built by an existing engine."""
