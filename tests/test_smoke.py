"""Smoke checks: one interpreter for an env's imports and code, each check timed and named,
limits that stop what a check started (even in a session of its own), cancelling; saved results
that doctor reuses until the env's files change; `envs` from manifests only; Ctrl-C on verify."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import installkit
from conftest import PYENV_VERSIONS
from nlpsetup.execution import smoke
from nlpsetup.recipes.model import Smoke


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> tuple[str, Path]:
    """A bare env holding modules that count their imports and one that kills its interpreter."""
    path = tmp_path_factory.mktemp("env") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    (site,) = path.glob("lib/python*/site-packages")
    (site / "counted.py").write_text("import os\nwith open(os.environ['COUNT_FILE'], 'a') as f:\n    f.write('x')\n")
    (site / "crasher.py").write_text("import os\nos._exit(5)\n")
    return str(path / "bin" / "python"), path


def check(imports=(), code="", commands=(), timeout=60, **env) -> Smoke:
    return Smoke(imports=tuple(imports), code=code, commands=tuple(commands), timeout=timeout,
                 env=tuple(env.items()))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped running
    except OSError:
        return False


def test_imports_and_code_share_one_interpreter_so_the_import_is_paid_once(venv, tmp_path):
    py, path = venv
    count = tmp_path / "count"
    results = smoke.run_all(check(["counted"], "import counted\nassert counted", COUNT_FILE=str(count)), py, path)
    assert [(r.name, r.passed) for r in results] == [("import counted", True), ("code: import counted", True)]
    assert count.read_text() == "x", "the code check must reuse the import, not start a second interpreter"
    assert results[0].import_seconds is not None


def test_a_failing_check_is_named_with_its_time_and_the_others_still_run(venv):
    py, path = venv
    seen = []
    results = smoke.run_all(check(["json"], "import time\ntime.sleep(0.3)\nraise ValueError('boom')",
                                  [["python", "-c", "print('the command ran')"]]), py, path, on_result=seen.append)
    assert [(r.name, r.passed) for r in results] == [
        ("import json", True), ("code: import time", False), ("python -c print('the command ran')", True)]
    failed = results[1]
    assert failed.seconds >= 0.3 and "ValueError: boom" in failed.detail
    assert "nlpsetup_smoke_harness" not in failed.detail, "the harness's own frame is noise"
    assert seen == results, "each result is reported as it comes"


def test_a_check_that_kills_its_interpreter_fails_and_the_next_runs_in_a_fresh_one(venv):
    py, path = venv
    results = smoke.run_all(check(["crasher"], "import json"), py, path)
    assert [(r.name, r.passed) for r in results] == [("import crasher", False), ("code: import json", True)]
    assert "exited with code 5" in results[0].detail


@pytest.mark.parametrize("where", ["code", "command"])
def test_a_hanging_check_is_stopped_at_its_limit_with_what_it_started_in_its_own_session(venv, tmp_path, where):
    py, path = venv
    pidfile = tmp_path / "pid"
    program = (f"import subprocess, sys, time\n"
               f"subprocess.Popen([sys.executable, '-c', \"import os, time; open({str(pidfile)!r}, 'w')"
               f".write(str(os.getpid())); time.sleep(600)\"], start_new_session=True)\n"
               f"time.sleep(600)\n")
    s = check(code=program, timeout=3) if where == "code" else check(commands=[["python", "-c", program]], timeout=3)
    start = time.monotonic()
    (result,) = smoke.run_all(s, py, path)
    assert time.monotonic() - start < 15
    assert not result.passed and result.detail == "timed out after 3 s"
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "the process that left the check's process group must be stopped too"


def test_commands_start_after_the_imports_and_reuse_them_instead_of_importing_again(venv, tmp_path):
    py, path = venv
    site = Path(next(path.glob("lib/python*/site-packages")))
    times, count = tmp_path / "times", tmp_path / "count"
    (site / "slowimport.py").write_text(
        f"import time\ntime.sleep(1)\nopen({str(times)!r}, 'a').write('imported %f\\n' % time.time())\n")
    (site / "counted_cli.py").write_text(  # a CLI module: `python -m counted_cli` and a console script
        "import counted, sys\nif __name__ == '__main__':\n    print('args', sys.argv[1:])\n    sys.exit(0)\n")
    (path / "bin" / "counted-cli").write_text(f"#!{py}\nimport sys, runpy\n"
                                              "sys.exit(runpy.run_module('counted_cli', run_name='__main__'))\n")
    (path / "bin" / "counted-cli").chmod(0o755)
    command = ["python", "-c", f"import time, slowimport; open({str(times)!r}, 'a').write('command %f\\n' % time.time())"]
    s = check(["slowimport", "counted"], "import counted", [command, ["python", "-m", "counted_cli", "x"],
                                                             ["counted-cli", "--help"]], COUNT_FILE=str(count))
    log = io.StringIO()
    results = smoke.run_all(s, py, path, log=log)
    assert [r.name for r in results] == ["import slowimport, counted", "code: import counted", command[0] + " "
                                         + " ".join(command[1:]), "python -m counted_cli x", "counted-cli --help"]
    assert all(r.passed for r in results), results
    got = dict(line.split() for line in times.read_text().splitlines())
    assert float(got["command"]) >= float(got["imported"]), "a command starts once the imports are done"
    assert results[2].seconds < 0.9, "the command reused the import instead of paying its second again"
    assert count.read_text() == "x", "one import for the imports, the code and all three commands"
    assert "args ['x']" in log.getvalue() and "args ['--help']" in log.getvalue(), "each command's output is logged"


def test_a_command_that_is_not_this_python_runs_in_its_own_process_and_fails_as_it_would(venv, tmp_path):
    py, path = venv
    stale = path / "bin" / "stale-cli"  # a console script whose interpreter was removed
    stale.write_text("#!/nonexistent/python\nprint('never')\n")
    stale.chmod(0o755)
    shell = path / "bin" / "shell-cli"
    shell.write_text("#!/bin/sh\necho \"shell says $1\"\nexit 3\n")
    shell.chmod(0o755)
    results = smoke.run_all(check(commands=[["stale-cli"], ["shell-cli", "hi"], ["no-such-cli"]]), py, path)
    assert [r.passed for r in results] == [False, False, False]
    assert "shell says hi" in results[1].detail
    assert "no-such-cli" in results[2].detail


def test_cancel_stops_the_running_checks_at_once(venv):
    py, path = venv
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    start = time.monotonic()
    smoke.run_all(check(code="import time; time.sleep(60)", commands=[["python", "-c", "import time; time.sleep(60)"]],
                        timeout=120), py, path, cancel=cancel)
    assert time.monotonic() - start < 10


@pytest.mark.skipif(not list(PYENV_VERSIONS.glob("3.6*/bin/python3.6")), reason="no Python 3.6 here")
def test_the_harness_runs_on_python_36(tmp_path):
    py = str(sorted(PYENV_VERSIONS.glob("3.6*/bin/python3.6"))[-1])
    results = smoke.run_all(check(["json"], "import sys\nassert sys.version_info[:2] == (3, 6)"), py, tmp_path)
    assert [r.passed for r in results] == [True, True], results


# --- with real envs from the local index --------------------------------------------------------


@pytest.fixture
def nlp(kit, home):
    def run(*args, timeout=300):
        return installkit.nlpsetup(kit, home, *args, timeout=timeout)

    run.home, run.kit = home, kit
    return run


def env_smoke(doctor_json: str, env: str) -> dict:
    return next(c for c in json.loads(doctor_json)["checks"] if c["id"] == "env.smoke" and c.get("env") == env)


def test_doctor_reuses_a_result_until_a_dist_info_changes_deep_and_verify_run_afresh(nlp):
    assert nlp("install", "tinytool", "--backend", "pip")[0] == 0  # not copied: a copy's RECORDs are new files
    env = nlp.home / "envs" / "tinytool"
    (site,) = env.glob("lib/python*/site-packages")
    # Break the tool behind the RECORD's back: only a fresh run can see it.
    (site / "tinytool" / "__init__.py").write_text("raise ImportError('gone')\n")
    code, out, _ = nlp("doctor", "--json")
    assert env_smoke(out, "tinytool")["status"] == "ok" and "unchanged" in env_smoke(out, "tinytool")["message"]
    code, out, _ = nlp("doctor", "--json", "--deep")
    assert code == 1 and env_smoke(out, "tinytool")["status"] == "failure"
    (site / "tinytool" / "__init__.py").write_text("VERSION = '2.0.0'\n")
    assert nlp("verify", "tinytool")[0] == 0, "verify always runs afresh (and saves what it found)"
    assert "unchanged" in env_smoke(nlp("doctor", "--json")[1], "tinytool")["message"]
    # A changed dist-info (here a downgrade: pip rewrites RECORD) invalidates the saved result.
    subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "tinytool==1.0.0"],
                   check=True, env=installkit.environ(nlp.kit, nlp.home))
    code, out, _ = nlp("doctor", "--json")
    assert code == 1 and env_smoke(out, "tinytool")["status"] == "failure", "the recipe's code wants 2.0.0"
    assert "unchanged" not in env_smoke(out, "tinytool")["message"]


@pytest.mark.installed(("tinytool", "pip"))
def test_envs_reads_sizes_from_manifests_and_never_walks_the_env(nlp):
    env = nlp.home / "envs" / "tinytool"
    m = json.loads((env / "nlpsetup.json").read_text())
    assert m["size_bytes"] > 1_000_000, "the size is recorded at install"
    (env / "big.bin").write_bytes(os.urandom(3_000_000))  # a walk would see this
    m["size_bytes"] = 12345
    (env / "nlpsetup.json").write_text(json.dumps(m))
    code, out, _ = nlp("envs", "--json")
    assert code == 0 and json.loads(out)[0]["size_bytes"] == 12345


@pytest.mark.installed(("a", "pip"), ("b", "pip"))
def test_ctrl_c_stops_a_parallel_verify_and_every_check_it_started(nlp, kit):
    for name in ("a", "b"):
        mpath = nlp.home / "envs" / name / "nlpsetup.json"
        m = json.loads(mpath.read_text())
        m["tools"][0]["smoke"]["code"] = "import time; time.sleep(120)"
        mpath.write_text(json.dumps(m))
    p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "verify"], env=installkit.environ(kit, nlp.home),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    harness = f"{nlp.home}/envs/"

    def running() -> list[int]:
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if harness in cmd and "nlpsetup_smoke_harness" in cmd and alive(int(pid)):
                pids.append(int(pid))
        return pids

    want = min(2, os.cpu_count() or 1)
    deadline = time.monotonic() + 60
    while len(running()) < want and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(running()) == want, "the envs are checked at the same time, one per CPU"
    start = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert time.monotonic() - start < 10 and p.returncode == 130, err
    assert "interrupted" in err
    time.sleep(0.5)
    assert running() == []
