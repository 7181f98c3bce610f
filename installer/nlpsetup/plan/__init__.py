"""Planning: what a command will build, from a tool, a lock, or an env's own record."""
