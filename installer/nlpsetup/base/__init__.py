"""Ground floor: errors, paths, files, secrets masking, the one door to subprocesses and HTTP, signals."""
