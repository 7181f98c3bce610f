"""One-line diagnoses for failed steps, read from the tail of their output.

A table of (pattern, diagnosis): data that is easy to extend, checked in order.
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[str, str], ...] = (
    (r"No space left on device|ENOSPC|\[Errno 28\]",
     "disk full: free space where NLPSETUP_HOME lives (and pip's cache), then retry"),
    # Before the network rule: offline, the index is not unreachable, it was never asked.
    (r"Network connectivity is disabled|wasn't found in the cache|not found in the cache|--offline",
     "offline, and the package is not in the cache: connect once, or build from a bundle made on a connected "
     "host (nlpsetup bundle TOOL -o DIR; nlpsetup install --from-bundle DIR)"),
    (r"HTTP error 40[13]|401 Unauthorized|403 Forbidden|status code: 40[13]|Missing credentials",
     "the index refused the request (401/403): check the credentials in the index URL, ~/.netrc or the keyring"),
    (r"Failed to establish a new connection|Name or service not known|Temporary failure in name resolution"
     r"|Network is unreachable|Connection refused|Max retries exceeded|error sending request|Could not connect"
     r"|ConnectionResetError|IncompleteRead|Connection broken|dns error",
     "network unreachable: check the index URL, proxy variables (HTTPS_PROXY) and your connection"),
    (r"DO NOT MATCH THE HASHES|hash mismatch|Hash mismatch|BadZipFile|not a zip file|invalid zip|"
     r"Failed to read from zip|corrupt",
     "a downloaded file is corrupt: clear the cache (pip cache purge / uv cache clean) and retry"),
    (r"No matching distribution found|Could not find a version that satisfies|not found in the package registry"
     r"|no wheels with a matching|has no wheels with a matching|Because .* was not found|there is no version of",
     "no release fits this Python or platform: check the variant's Python range (nlpsetup show TOOL)"),
    (r"ResolutionImpossible|conflicting dependencies|No solution found|requirements are unsatisfiable"
     r"|Cannot install .* because these package versions have conflicting",
     "resolver conflict: the pins contradict a dependency; loosen or change the recipe's pins"),
    (r"command '(gcc|cc|g\+\+|clang)' failed|gcc: not found|unable to execute '(gcc|cc)'|"
     r"Microsoft Visual C\+\+ .* is required|error: command .*(gcc|cc|clang).* failed",
     "a C compiler is missing: install one (Debian/Ubuntu: apt-get install build-essential)"),
    (r"metadata-generation-failed|Failed building wheel|subprocess-exited-with-error|Failed to build",
     "a package failed to build from source: prefer a variant with binary wheels for this Python"),
)
_COMPILED = tuple((re.compile(p), d) for p, d in _RULES)


# Under --require-hashes (a lock or a bundle) a hash mismatch means the bytes served are not the
# ones recorded: clearing a cache would not change them. pip names `name==version from URL`, uv
# `name==version`; elsewhere a mismatch with the index's own hash is a corrupt download (_RULES).
_RECORDED_MISMATCH = re.compile(r"DO NOT MATCH THE HASHES[\s\S]*?\n\s+(?P<pip>\S+==\S+(?: from \S+?)?):?\n"
                                r"|Hash mismatch for `(?P<uv>[^`]+)`|DO NOT MATCH THE HASHES|[Hh]ash mismatch")


def diagnose(lines: list[str] | tuple[str, ...], *, locked: bool = False) -> str | None:
    """The first diagnosis whose pattern the output matches; `locked`: the step checked the hashes a
    lock or bundle recorded."""
    text = "\n".join(lines)
    if locked and (m := _RECORDED_MISMATCH.search(text)):
        file = m.group("pip") or m.group("uv") or "a file"
        return (f"{file} differs from the file the lock or bundle recorded (another sha256): the index or mirror "
                "serves other bytes for that release, or the bundle was altered; get the lock or bundle again "
                "from its source, or check which index serves it (PIP_INDEX_URL, NLPSETUP_TORCH_INDEX_URL)")
    for pattern, diagnosis in _COMPILED:
        if pattern.search(text):
            return diagnosis
    return None


TIMEOUT_DIAGNOSIS = ("the step ran past its time limit: pip's resolver may be backtracking; "
                     "pin tighter in the recipe, or raise the limit with --step-timeout")


def last_failure(logs_dir) -> dict | None:
    """The newest install log that ended in a failure or an interrupt: its plan and its tail."""
    try:
        logs = sorted(logs_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    for log in logs[:50]:
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if any(line.startswith(("# failed", "# interrupted")) for line in lines[-5:]):
            plan = "\n".join(ln for ln in lines if ln.startswith(("# nlpsetup", "$ ", "## ")))
            return {"log": str(log), "plan": plan, "tail": lines[-40:]}
    return None
