"""An env's status: what its manifest says it holds, and whether it can still be used (ok, broken,
corrupt, interrupted, or foreign: a folder nlpsetup did not build). It reads manifests, so it sits
above both `env` and `manifest`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from nlpsetup.envs import manifest
from nlpsetup.envs.env import Env, interpreter_runs


@dataclass
class EnvStatus:
    name: str
    path: str
    status: str  # ok | broken | corrupt (its manifest cannot be trusted) | interrupted | foreign
    problems: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    python: str | None = None
    size_bytes: int | None = None
    data: dict | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "status": self.status, "problems": self.problems,
                "tools": self.tools, "python": self.python, "size_bytes": self.size_bytes}


def status(env: Env, *, pending: bool = False, with_size: bool = True, start_python: bool = True) -> EnvStatus:
    """What the env holds by its manifest, and whether its interpreter still runs (`start_python`;
    else only whether it exists, which is what `envs` can afford)."""
    st = EnvStatus(env.name, str(env.path), "ok")
    if pending:
        st.status = "interrupted"
        st.problems.append("an install or remove was interrupted (run any nlpsetup command to recover)")
    try:
        data = manifest.read(env.path)
    except manifest.ManifestError as exc:
        if not env.manifest_path.exists() and not env.built_by_nlpsetup():  # a user's folder, left alone
            st.status = "foreign"
            st.problems.append(f"not built by nlpsetup (no manifest, no marker): left alone; "
                               f"move it out of {env.path.parent} if it is yours")
        else:
            st.status = "corrupt" if isinstance(exc, manifest.Corrupt) else "broken"
            st.problems.append(str(exc))
        data = None
    if data is not None:
        st.data = data
        st.tools = [f"{t.get('name')} {t.get('variant')}" for t in data.get("tools", [])]
        interp = data.get("interpreter", {})
        st.python = interp.get("version")
        env_python = interp.get("env_python")
        runs = interpreter_runs if start_python else os.path.exists
        if not env_python or not runs(env_python):
            st.status = "broken"
            st.problems.append(f"its interpreter no longer runs ({interp.get('path') or env_python}): "
                               "was that Python removed?")
    if with_size:  # recorded at install; walked only for envs installed before it was
        recorded = (data or {}).get("size_bytes")
        st.size_bytes = recorded if isinstance(recorded, int) else env.size_bytes()
    return st
