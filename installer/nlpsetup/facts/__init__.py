"""Host facts: the OS, CPU, the Python interpreters present, the GPU and its driver."""
