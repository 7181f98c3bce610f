"""The command line: one module per group of commands, registered by main."""
