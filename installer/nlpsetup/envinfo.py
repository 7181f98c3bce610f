"""What an env holds and whether it still works: status, size, drift, smoke checks again."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nlpsetup import manifest, proc, smoke
from nlpsetup.recipes import Smoke


@dataclass
class EnvStatus:
    name: str
    path: str
    status: str  # ok | broken | interrupted
    problems: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    python: str | None = None
    size_bytes: int | None = None
    data: dict | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "status": self.status, "problems": self.problems,
                "tools": self.tools, "python": self.python, "size_bytes": self.size_bytes}


def status(env_path: Path, *, pending: bool = False, with_size: bool = True, start_python: bool = True) -> EnvStatus:
    """From the manifest; `start_python` also starts the env's interpreter (else: it exists)."""
    st = EnvStatus(env_path.name, str(env_path), "ok")
    if pending:
        st.status = "interrupted"
        st.problems.append("an install or remove was interrupted (run any nlpsetup command to recover)")
    try:
        data = manifest.read(env_path)
    except manifest.ManifestError as exc:
        st.status = "broken"
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
        st.size_bytes = recorded if isinstance(recorded, int) else disk_usage(env_path)
    return st


def interpreter_runs(python: str) -> bool:
    if not os.path.exists(python):
        return False
    code, _ = proc.capture([python, "-I", "-c", "pass"], env=proc.child_env(), timeout=30)
    return code == 0


def disk_usage(path: Path) -> int:
    """Bytes on disk, counting hard-linked files once (as du does): uv links files from its cache."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def distributions(env_python: str, env_path: Path) -> dict[str, str] | None:
    """Name -> version of every distribution in the env, read from its *.dist-info folders
    (no interpreter start: this runs after every install and every verify)."""
    found: dict[str, str] = {}
    roots = list(env_path.glob("lib/python*/site-packages")) + list(env_path.glob("Lib/site-packages"))
    if not roots:
        return None
    for root in roots:
        for info in root.glob("*.dist-info"):
            name = version = None
            try:
                with open(info / "METADATA", encoding="utf-8", errors="replace") as f:
                    for line in f:
                        if not line.strip():
                            break  # headers end at the first blank line
                        if line.startswith("Name:"):
                            name = line[5:].strip()
                        elif line.startswith("Version:"):
                            version = line[8:].strip()
            except OSError:
                continue
            if name and version:
                found[name] = version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def drift(recorded: dict[str, str], current: dict[str, str]) -> dict[str, list]:
    rec = {k.lower(): (k, v) for k, v in recorded.items()}
    cur = {k.lower(): (k, v) for k, v in current.items()}
    return {
        "added": sorted(f"{cur[k][0]}=={cur[k][1]}" for k in cur.keys() - rec.keys()),
        "removed": sorted(f"{rec[k][0]}=={rec[k][1]}" for k in rec.keys() - cur.keys()),
        "changed": sorted(f"{rec[k][0]} {rec[k][1]} -> {cur[k][1]}" for k in rec.keys() & cur.keys()
                          if rec[k][1] != cur[k][1]),
    }


def smoke_of(data: dict) -> list[Smoke]:
    out = []
    for t in data.get("tools", []):
        s = t.get("smoke") or {}
        out.append(Smoke(imports=tuple(s.get("imports", ())), code=s.get("code", ""),
                         commands=tuple(tuple(c) for c in s.get("commands", ())),
                         timeout=int(s.get("timeout", 300)), env=tuple((s.get("env") or {}).items())))
    return out


def verify(env_path: Path, on_result=None, cancel=None) -> dict:
    """Smoke checks again, and drift since install. ok is False for a broken env or a failed check.
    The result is saved for doctor, valid while the env's files stay as they are."""
    st = status(env_path, with_size=False)
    result = {"env": env_path.name, "path": str(env_path), "ok": st.status == "ok", "problems": st.problems,
              "smoke": [], "drift": None}
    if st.status != "ok" or st.data is None:
        return result
    env_python = st.data["interpreter"]["env_python"]
    smokes = smoke_of(st.data)
    fp = smoke.fingerprint(env_path, env_python, smokes)
    for s in smokes:
        for r in smoke.run_all(s, env_python, env_path, on_result=on_result, cancel=cancel):
            result["smoke"].append(r.to_dict())
    if cancel is not None and cancel.is_set():
        raise KeyboardInterrupt
    smoke.save(env_path, fp, smoke=result["smoke"])
    result["ok"] = all(r["passed"] for r in result["smoke"])
    current = distributions(env_python, env_path)
    if current is not None:
        result["drift"] = drift(st.data.get("distributions", {}), current)
    return result
