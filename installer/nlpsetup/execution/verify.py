"""Whether an env still works: its smoke checks again, and drift since install."""

from __future__ import annotations

from pathlib import Path

from nlpsetup.base.parallel import in_parallel
from nlpsetup.envs.env import Env
from nlpsetup.envs.status import status
from nlpsetup.execution import smoke, smokecache
from nlpsetup.recipes.model import Smoke


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


def record_verify(env_path: Path, ok: bool) -> None:
    """Keep the verdict of the env's smoke checks (install, verify, add, upgrade), which `envs`
    shows until the next one: a failed verify does not read as ok afterwards."""
    import datetime as dt

    from nlpsetup.base.files import write_json_atomic

    at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    try:
        write_json_atomic(Env.at(env_path).verified_path, {"ok": ok, "at": at})
    except OSError:
        pass  # a read-only env: nothing to keep, the next verify says it again


def last_verify(env_path: Path) -> dict | None:
    from nlpsetup.base.files import read_cache

    return read_cache(Env.at(env_path).verified_path, {"ok": bool, "at": str})


def tool_versions(data: dict, dists: dict[str, str] | None = None, env_path: Path | None = None) -> list[dict]:
    """Each tool of an env with the installed version of its main distribution (recorded at
    install; else the one named as the tool): read from the env itself when `env_path` is given,
    else from `dists`."""
    from packaging.utils import canonicalize_name

    have = {canonicalize_name(k): v for k, v in (dists or {}).items()}
    out = []
    for t in data.get("tools", []):
        main = t.get("main") or t.get("name") or "?"
        version = Env.at(env_path).version_of(main) if env_path is not None else have.get(canonicalize_name(main))
        out.append({"tool": t.get("name"), "package": main, "version": version, "variant": t.get("variant")})
    return out


def verify(env_path: Path, on_result=None, cancel=None) -> dict:
    """Smoke checks again, and drift since install. ok is False for a broken env or a failed check.
    The result is saved for doctor, valid while the env's files stay as they are."""
    st = status(Env.at(env_path), with_size=False)
    result = {"env": env_path.name, "path": str(env_path), "ok": st.status == "ok", "status": st.status,
              "problems": st.problems, "smoke": [], "drift": None}
    if st.status != "ok" or st.data is None:
        if st.status in ("broken", "corrupt"):
            result["repair"] = repair_command(env_path.name, st.data)
        return result
    env_python = st.data["interpreter"]["env_python"]
    smokes = smoke_of(st.data)
    fp = smokecache.fingerprint(env_path, env_python, smokes)
    for s in smokes:
        for r in smoke.run_all(s, env_python, env_path, on_result=on_result, cancel=cancel):
            result["smoke"].append(r.to_dict())
    if cancel is not None and cancel.is_set():
        raise KeyboardInterrupt
    smokecache.save(env_path, fp, smoke=result["smoke"])
    result["ok"] = all(r["passed"] for r in result["smoke"])
    record_verify(env_path, result["ok"])
    if not result["ok"]:
        result["repair"] = f"nlpsetup reinstall {env_path.name}"
    current = Env.at(env_path).distributions()
    if current is not None:
        result["drift"] = drift(st.data.get("distributions", {}), current)
    return result


def verify_envs(store, names: list[str], on_ready=None) -> list[dict]:
    """verify() for each named env (every env when none is named), several at once (one per CPU,
    the costliest first); `on_ready` gets each result as soon as it is done."""
    everything = not names
    names = names or store.names()
    odd = {n: why for n in names if everything and (why := store.odd(n))}  # named envs are checked as named
    paths = [store.existing(name) for name in names if name not in odd]
    skipped = [{"env": n, "path": str(store.path(n)), "ok": True, "status": "skipped", "problems": [why],
                "smoke": [], "drift": None} for n, why in odd.items()]
    for row in skipped:
        if on_ready:
            on_ready(row)
    return skipped + in_parallel(lambda p, cancel: verify(p, cancel=cancel), paths, on_ready=on_ready,
                                 cost=smokecache.expected_seconds)


def repair_command(name: str, data: dict | None) -> str:
    """The command that repairs an env, ready to paste: `reinstall` rebuilds it as it was; an env
    whose manifest is gone has nothing to rebuild from, so its tool must be named again."""
    return f"nlpsetup reinstall {name}" if data is not None else f"nlpsetup install TOOL --name {name} --force"


def _as_of_date(as_of) -> str | None:
    """The day an env's dependencies were taken as of (its manifest's as_of), None for no cutoff."""
    return as_of.get("date") if isinstance(as_of, dict) and isinstance(as_of.get("date"), str) else None


def statuses(store, names: list[str] | None = None) -> list[dict]:
    """Every env (or those named) from its manifest, the tool's installed version read from the
    env's own metadata and the last verify: no interpreter starts, no tree walk."""
    from nlpsetup.envs import kernels

    pending = set(store.pending())
    out = []
    for n in names or store.names():
        path = store.path(n)
        st = status(Env.at(path), pending=n in pending, start_python=False)
        row = st.to_dict()
        data = st.data or {}
        installed = tool_versions(data, env_path=path) if st.data is not None else []
        first = installed[0] if installed else {}
        verified = last_verify(path) if st.data is not None else None
        row.update(tool=first.get("tool"), version=first.get("version"), variant=first.get("variant"),
                   installed=installed, additions=list(data.get("additions", [])), kernel=kernels.has(n, path),
                   last_verify=verified, created=data.get("created"), updated=data.get("updated"),
                   backend=data.get("backend"), as_of=_as_of_date(data.get("as_of")))
        if row["status"] == "ok" and verified is not None and not verified["ok"]:
            row.update(status="failed", problems=[f"its last verify failed ({verified['at']})"])
        if row["status"] in ("broken", "corrupt", "failed"):
            row["repair"] = repair_command(n, st.data)
        if n in pending and store.busy(n):  # being built or removed right now (its lock is held): running
            row.update(status="running", problems=["an install or remove is running"])
        out.append(row)
    return out
