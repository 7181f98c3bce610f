"""For recipe authors and CI: matrices, workflows, recipe tests, outdated pins, discovery."""
