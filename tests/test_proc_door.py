"""Every process nlpsetup starts goes through `proc` (argument lists, scrubbed environment, time
limits, process-group kills, masked logs). Proven by an audit hook over real commands, not by a
grep: the hook sees every spawn, and the first frame outside the standard library that asked for
it must be nlpsetup/base/proc.py, or a third-party library (python-discovery's own probes)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import installkit

FIXTURES = Path(__file__).parent / "data" / "nvidia-smi"

# Runs nlpsetup with an audit hook that appends one JSON line per spawn to $DOOR_LOG.
HOOKED = r"""
import json, os, sys
STDLIB = os.path.dirname(os.__file__) + os.sep  # not sysconfig's platstdlib: in a venv it holds site-packages
LOG = os.environ["DOOR_LOG"]
import nlpsetup
PKG = os.path.dirname(os.path.abspath(nlpsetup.__file__)) + os.sep
SPAWNS = ("subprocess.Popen", "os.posix_spawn", "os.system", "os.spawn")

def hook(event, args):
    if event not in SPAWNS and not event.startswith("os.exec"):
        return
    f = sys._getframe(1)
    while f is not None and (f.f_code.co_filename.startswith(STDLIB) or f.f_code.co_filename.startswith("<")):
        f = f.f_back
    where = f.f_code.co_filename if f is not None else "?"
    kind = "proc" if where == PKG + "base/proc.py" else "nlpsetup" if where.startswith(PKG) else "third-party"
    with open(LOG, "a") as out:
        out.write(json.dumps({"event": event, "kind": kind, "where": f"{where}:{f.f_lineno if f else 0}"}) + "\n")

sys.addaudithook(hook)
sys.argv = ["nlpsetup", *sys.argv[1:]]
from nlpsetup.__main__ import main
main()
"""


def _fake_nvidia_smi(folder: Path) -> Path:
    """A fake nvidia-smi that prints a recorded real answer (so the GPU probe really runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    csv = (FIXTURES / "570.133.07-compute-cap-query.csv").read_text()
    smi.write_text(f"#!/bin/sh\ncat <<'EOF'\n{csv}EOF\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    return folder


def test_every_spawn_goes_through_proc(kit, tmp_path):
    home, log = tmp_path / "home", tmp_path / "spawns.jsonl"
    env = installkit.environ(kit, home, DOOR_LOG=str(log))
    env["PATH"] = f"{_fake_nvidia_smi(tmp_path / 'bin')}{os.pathsep}{env['PATH']}"

    def hooked(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", HOOKED, *args], capture_output=True, text=True, env=env,
                              timeout=300)

    commands = [("host",), ("install", "tinytool", "--backend", "pip"), ("install", "nlpdemo", "--backend", "uv"),
                ("verify", "tinytool"), ("doctor",), ("run", "tinytool", "--", "python", "-c", "pass"),
                ("export", "tinytool"), ("bundle", "tinytool", "-o", str(tmp_path / "B"), "--python", "3.12"),
                ("install", "--from-bundle", str(tmp_path / "B"), "--name", "offline")]
    for args in commands:
        p = hooked(*args)
        assert p.returncode in (0, 1), (args, p.stderr[-2000:])  # doctor may warn or fail; it must not crash
        assert "Traceback" not in p.stderr, (args, p.stderr[-2000:])
    spawns = [json.loads(line) for line in log.read_text().splitlines()]
    outside = [s for s in spawns if s["kind"] == "nlpsetup"]
    assert not outside, f"spawned outside proc.py: {outside}"
    through_proc = [s for s in spawns if s["kind"] == "proc"]
    # The commands above really spawn: installers, smoke checks, the GPU probe, uv, and run's exec.
    assert len(through_proc) >= 10 and any(s["event"].startswith("os.exec") for s in through_proc)


def test_run_becomes_the_command_and_passes_a_signal_death_on(kit, tmp_path):
    home = tmp_path / "home"
    env = installkit.environ(kit, home)
    assert subprocess.run([sys.executable, "-m", "nlpsetup", "install", "tinytool"], env=env,
                          capture_output=True, timeout=300).returncode == 0
    code = "import os; print(os.getpid(), flush=True); os.kill(os.getpid(), 15)"
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "run", "tinytool", "--", "python", "-c", code],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == -15, p.stderr  # killed by SIGTERM itself: a shell shows 143 (128+15)
    sh = subprocess.run(["sh", "-c", f'"{sys.executable}" -m nlpsetup run tinytool -- python -c "{code}"; echo "exit=$?"'],
                        env=env, capture_output=True, text=True, timeout=60)
    assert "exit=143" in sh.stdout
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "run", "tinytool", "--", "python", "-c",
                        "import sys; sys.exit(7)"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 7
