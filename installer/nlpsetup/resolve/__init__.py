"""Resolution: a request against a recipe and the host, as of a date, to a plan or a refusal."""
