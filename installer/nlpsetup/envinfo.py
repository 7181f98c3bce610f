"""Whether an env still works: its smoke checks again, and drift since install."""

from __future__ import annotations

from pathlib import Path

from nlpsetup import smoke
from nlpsetup.env import Env, status
from nlpsetup.recipes import Smoke


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
    st = status(Env.at(env_path), with_size=False)
    result = {"env": env_path.name, "path": str(env_path), "ok": st.status == "ok", "status": st.status,
              "problems": st.problems, "smoke": [], "drift": None}
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
    return skipped + smoke.in_parallel(lambda p, cancel: verify(p, cancel=cancel), paths, on_ready=on_ready,
                                       cost=smoke.expected_seconds)


def statuses(store) -> list[dict]:
    """Every env from its manifest alone: no interpreter starts, no tree walk."""
    pending = set(store.pending())
    out = [status(Env.at(store.path(n)), pending=n in pending, start_python=False).to_dict() for n in store.names()]
    for row in out:  # being built or removed right now (its lock is held): running, not broken
        if row["name"] in pending and store.busy(row["name"]):
            row.update(status="running", problems=["an install or remove is running"])
    return out
