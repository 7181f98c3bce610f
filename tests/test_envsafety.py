"""An env, or a user's own files, are never lost or silently replaced: installing over an env that
holds something else, doctor --fix, SIGTERM / SIGHUP / SIGKILL in the middle of a download (a slow
local index), orphaned children, hostile journal names, failed removes and envs that are symlinks.
Real nlpsetup commands against the local index, real signals to real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import figures
import installkit
from nlpsetup.base import proc

HAS_UV = bool(__import__("nlpsetup.resolve.backends", fromlist=["find_uv"]).find_uv())


def tool_of(home: Path, env: str) -> str:
    return json.loads((home / "envs" / env / "nlpsetup.json").read_text())["tools"][0]["name"]


def no_leftovers(home: Path) -> bool:
    envs = home / "envs"
    journal = home / "journal"
    return not [p for p in envs.iterdir() if p.name.startswith(".") or p.name.endswith(".failed")] and \
        not (journal.exists() and list(journal.iterdir()))


def user_file(home: Path, env: str) -> Path:
    f = home / "envs" / env / "my-notes.txt"
    f.write_text("mine")
    return f


def count_env(home: Path, env: str, lost: bool) -> None:
    figures.add("envs lost", int(lost))
    assert not lost, f"env {env} was lost"


# --- 1. silent replacement -----------------------------------------------------------------------


@pytest.mark.installed(("e", "pip"))
def test_installing_something_else_over_an_env_needs_force(cli, home, tmp_path):
    mine = user_file(home, "e")
    held = json.loads((home / "envs" / "e" / "nlpsetup.json").read_text())["interpreter"]["version"]
    other = "3.11" if not held.startswith("3.11") else "3.12"
    lock = tmp_path / "e.lock.json"
    assert cli("lock", "e", "-o", str(lock))[0] == 0
    data = json.loads(lock.read_text())
    data["distributions"]["tinytool"] = "1.0.0"  # the recipe pins 2.0.0: a lock of another set
    lock.write_text(json.dumps(data))
    for args in (["nlpdemo", "--name", "e"], ["tinytool", "--name", "e", "--python", other],
                 ["--from-lock", str(lock), "--name", "e"]):
        code, _, err = cli("install", *args, "--backend", "pip")
        figures.add("replacements refused")
        assert code == 2 and "already holds tinytool 1 on Python" in err and "--force" in err, (args, err)
        assert mine.read_text() == "mine" and tool_of(home, "e") == "tinytool"
    code, out, err = cli("install", "tinytool", "--name", "e", "--backend", "pip")
    assert code == 0 and "already installed" in out + err  # the same thing again: as before
    (home / "envs" / "own").mkdir()
    (home / "envs" / "own" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # the user's own venv
    code, _, err = cli("install", "tinytool", "--name", "own", "--backend", "pip")
    assert code == 2 and "did not put there" in err and (home / "envs" / "own" / "pyvenv.cfg").exists()
    code, _, err = cli("install", "nlpdemo", "--name", "e", "--backend", "pip", "--force")
    assert code == 0 and tool_of(home, "e") == "nlpdemo", err


# --- 2. doctor --fix deletes only its own ----------------------------------------------------------


@pytest.mark.parametrize("name", ["x.failed", "x.backup", "X.FAILED"])
def test_names_of_nlpsetup_leftovers_are_reserved(cli, name):
    code, _, err = cli("install", "tinytool", "--name", name)
    assert code == 2 and "leftovers" in err


@pytest.mark.installed(("ok", "pip"))
def test_doctor_fix_spares_user_folders_linked_envs_and_working_envs_named_like_leftovers(cli, home, tmp_path):
    envs = home / "envs"
    os.rename(envs / "ok", envs / "ok.failed")  # a working env from before the name was reserved
    (envs / "data").mkdir()
    (envs / "data" / "corpus.txt").write_text("mine")
    (envs / "conda-root").mkdir()
    (envs / "conda-root" / "conda-meta").mkdir()
    code, out, err = cli("doctor", "--fix", "--quick", "--json")
    assert (envs / "ok.failed" / "nlpsetup.json").exists() and (envs / "data" / "corpus.txt").exists()
    assert (envs / "conda-root" / "conda-meta").is_dir()
    figures.add("user files kept", 3)
    rows = {r["name"]: r for r in json.loads(cli("envs", "--json")[1])}  # listed as the user's, not as broken
    assert rows["data"]["status"] == "foreign" and "not built by nlpsetup" in rows["data"]["problems"][0]
    # envs/ a link to another disk: --fix deletes nothing through it, even what looks half-built
    other = tmp_path / "other-disk"
    os.rename(envs, other)
    (home / "envs").symlink_to(other)
    (other / "half").mkdir()
    (other / "half" / ".nlpsetup-env").write_text("{}")
    code, out, err = cli("doctor", "--fix", "--quick")
    assert (other / "half").exists() and "deletes nothing there" in err, err


@pytest.mark.installed(("e", "pip"))
def test_doctor_reports_a_running_install_and_fix_leaves_its_backup(kit, cli, home):
    with installkit.SlowIndex(kit, delay=30) as slow:
        env = {**installkit.environ(kit, home, PIP_INDEX_URL=slow.url), "NO_PROXY": "127.0.0.1"}
        p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "install", "tinytool", "--name", "e", "--force",
                              "--backend", "pip"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert slow.requested.wait(120), "the install never reached the index"
            assert (home / "envs" / ".e.backup").is_dir()
            code, out, _ = cli("doctor", "--fix", "--quick", "--json")
            checks = json.loads(out)["checks"]
            assert [c for c in checks if c["id"] == "env.running" and c["env"] == "e"]
            assert not [c for c in checks if c.get("env") == "e" and c["status"] == "failure"]
            assert (home / "envs" / ".e.backup" / "nlpsetup.json").exists(), "--fix took a running install's backup"
            code, out, _ = cli("envs", "--json")
            assert [r["status"] for r in json.loads(out) if r["name"] == "e"] == ["running"]
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=60)
    assert p.returncode == 143
    count_env(home, "e", cli("verify", "e")[0] != 0)
    assert no_leftovers(home)


# --- 3. signals and orphans ------------------------------------------------------------------------


def _children(home: Path, env: str) -> list[dict]:
    try:
        return json.loads((home / "journal" / f"{env}.json").read_text()).get("children", [])
    except (OSError, ValueError):
        return []


def _alive(child: dict) -> bool:
    return proc.start_time(child["pid"]) == child["start"] and proc._alive(child["pid"])


def _wait_gone(children: list[dict], seconds: float = 10) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not any(_alive(c) for c in children):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(("sig", "code", "backend"), [
    (signal.SIGTERM, 143, "pip"), (signal.SIGHUP, 129, "pip"), (signal.SIGINT, 130, "pip"),
    pytest.param(signal.SIGKILL, -9, "uv", marks=pytest.mark.skipif(not HAS_UV, reason="needs uv")),
])
def test_a_signal_mid_download_puts_the_old_env_back_and_leaves_no_child(kit, cli, home, sig, code, backend):
    assert cli("install", "tinytool", "--name", "e", "--backend", backend)[0] == 0
    mine = user_file(home, "e")
    with installkit.SlowIndex(kit, delay=60) as slow:
        env = {**installkit.environ(kit, home, PIP_INDEX_URL=slow.url, UV_INDEX_URL=slow.url), "NO_PROXY": "127.0.0.1"}
        p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "install", "nlpdemo", "--name", "e", "--force",
                              "--backend", backend], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert slow.requested.wait(120), "the install never reached the index"
        # the child that asked the index may be recorded a moment after it started: wait for the record
        end = time.monotonic() + 60
        children = _children(home, "e")
        while not any(_alive(c) for c in children) and time.monotonic() < end:
            time.sleep(0.05)
            children = _children(home, "e")
        assert children and any(_alive(c) for c in children), "the journal records the running children"
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        figures.add("signals sent mid-download")
        assert p.returncode == code, err
        assert _wait_gone(children), "a child outlived nlpsetup"
        if sig != signal.SIGKILL:
            assert "rolled back" in err and "Traceback" not in err, err
    # after SIGKILL the next command (any) recovers: the orphaned installer is dead before the restore
    count_env(home, "e", cli("verify", "e")[0] != 0 or tool_of(home, "e") != "tinytool")
    assert mine.read_text() == "mine" and no_leftovers(home)


@pytest.mark.installed(("e", "pip"))
def test_recovery_kills_the_recorded_children_and_only_them(cli, home):
    # an orphan of a killed install, in a session of its own, and a process that merely reuses a recorded pid
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "301"], start_new_session=True)
    try:
        os.rename(home / "envs" / "e", home / "envs" / ".e.backup")
        (home / "envs" / "e").mkdir()
        (home / "journal").mkdir(exist_ok=True)
        (home / "journal" / "e.json").write_text(json.dumps({
            "env": "e", "phase": "building", "had_old": True, "pid": 999999, "children": [
                {"pid": orphan.pid, "start": proc.start_time(orphan.pid), "token": "t"},
                {"pid": bystander.pid, "start": (proc.start_time(bystander.pid) or 0) - 1, "token": "u"}]}))
        code, _, err = cli("envs")
        assert code == 0 and "restored the previous env" in err
        assert orphan.wait(timeout=10) == -9
        assert bystander.poll() is None, "a pid reused by another process is not ours to kill"
    finally:
        bystander.kill()
        orphan.kill()
    count_env(home, "e", cli("verify", "e")[0] != 0)


def test_a_check_that_starts_its_own_session_is_still_stopped_at_its_time_limit():
    start = time.monotonic()
    r = proc.run(["setsid", "-w", "env", "-i", "sh", "-c", "echo $$; exec sleep 300"], env=proc.child_env(), timeout=2)
    assert r.timed_out and time.monotonic() - start < 15
    pid = int(r.tail[0])
    end = time.monotonic() + 5
    while proc._alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    assert not proc._alive(pid), "the check's own session outlived its time limit"


def test_a_child_dies_with_nlpsetup_even_after_sigkill(tmp_path):
    """The parent-death signal: a child in its own session is killed by the kernel when its parent dies."""
    script = f"echo $$ > {tmp_path / 'pid'}; exec sleep 300"
    code = f"from nlpsetup.base import proc; proc.run(['sh', '-c', {script!r}], env=proc.child_env())"
    parent = subprocess.Popen([sys.executable, "-c", code])
    end = time.monotonic() + 30
    while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text().strip():
        assert time.monotonic() < end
        time.sleep(0.05)
    pid = int((tmp_path / "pid").read_text())
    parent.kill()
    parent.wait()
    assert _wait_gone([{"pid": pid, "start": proc.start_time(pid)}], 5)


# --- 4. journal and remove -------------------------------------------------------------------------


@pytest.mark.parametrize("journal", ["..", ".", "a b", "x.failed", ".e.backup"])
@pytest.mark.installed(("e", "pip"))
def test_a_journal_that_names_no_env_is_never_acted_on(cli, home, journal):
    user_file(home, "e")
    (home / "journal").mkdir(exist_ok=True)
    (home / "journal" / f"{journal}.json").write_text(json.dumps({"env": journal, "phase": "removing"}))
    assert cli("envs")[0] == 0
    code, out, _ = cli("doctor", "--fix", "--quick", "--json")
    figures.add("hostile inputs tried")
    count_env(home, "e", not (home / "envs" / "e" / "my-notes.txt").exists())
    assert [c for c in json.loads(out)["checks"] if c["id"] == "env.journal"]
    assert (home / "logs").exists()  # nothing outside the env was touched


@pytest.mark.installed(("e", "pip"))
def test_a_failed_remove_leaves_the_env_and_nothing_finishes_it_later(cli, home):
    code, _, err = cli("remove", "e", "--yes", env={"NLPSETUP_FAULT": "fail@during:remove"})
    assert code == 1 and "left in place" in err, err
    assert cli("envs")[0] == 0 and (home / "envs" / "e" / "nlpsetup.json").exists()
    assert cli("remove", "e", "--yes", env={"NLPSETUP_FAULT": "kill@before:remove"})[0] == -9
    code, _, err = cli("envs")  # an unrelated command: it must not finish a remove that had not begun
    assert code == 0 and "left in place" in err
    count_env(home, "e", cli("verify", "e")[0] != 0)
    assert no_leftovers(home)


@pytest.mark.installed(("e", "pip"))
def test_an_env_that_is_a_symlink_is_replaced_and_removed_without_leftovers(cli, home, tmp_path):
    elsewhere = tmp_path / "disk" / "e"
    elsewhere.parent.mkdir()
    os.rename(home / "envs" / "e", elsewhere)
    (home / "envs" / "e").symlink_to(elsewhere)
    code, _, err = cli("install", "tinytool", "--name", "e", "--force", "--backend", "pip")
    assert code == 0, err
    assert no_leftovers(home) and not (home / "envs" / "e").is_symlink()
    assert (elsewhere / "nlpsetup.json").exists(), "what the link pointed at is not nlpsetup's to delete"
    os.rename(home / "envs" / "e", tmp_path / "disk" / "e2")
    (home / "envs" / "e").symlink_to(tmp_path / "disk" / "e2")
    assert cli("remove", "e", "--yes")[0] == 0
    assert not (home / "envs" / "e").is_symlink() and no_leftovers(home)


# --- 9. small ones -------------------------------------------------------------------------------


@pytest.mark.installed(("e", "pip"))
def test_run_passes_128_plus_n_for_a_child_killed_by_signal_n(cli, kit, home):
    p = subprocess.run(["sh", "-c", f'"{sys.executable}" -m nlpsetup run e -- python -c '
                        '"import os, signal; os.kill(os.getpid(), signal.SIGTERM)"; echo "status=$?"'],
                       capture_output=True, text=True, env=installkit.environ(kit, home))
    assert "status=143" in p.stdout, p.stdout + p.stderr


@pytest.mark.installed(("e", "pip"))
def test_ctrl_c_stops_doctor_at_once(kit, cli, home):
    m = home / "envs" / "e" / "nlpsetup.json"
    data = json.loads(m.read_text())
    data["tools"][0]["smoke"] = {"code": "import time; time.sleep(120)", "timeout": 300}
    m.write_text(json.dumps(data))
    p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "doctor", "--deep"], env=installkit.environ(kit, home),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    start = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and time.monotonic() - start < 10 and "Traceback" not in err, err


def test_recipe_test_killed_mid_way_leaves_no_temporary_home(kit, home, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with installkit.SlowIndex(kit, delay=60) as slow:
        env = {**installkit.environ(kit, home, PIP_INDEX_URL=slow.url), "TMPDIR": str(tmp), "NO_PROXY": "127.0.0.1"}
        argv = [sys.executable, "-m", "nlpsetup", "recipe", "test", "tinytool", "--backend", "pip"]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            slow.requested.clear()
            p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert slow.requested.wait(120)
            p.send_signal(sig)
            p.communicate(timeout=60)
            if sig == signal.SIGTERM:
                assert p.returncode == 143 and not list(tmp.glob("nlpsetup-recipe-test-*"))
            else:
                assert list(tmp.glob("nlpsetup-recipe-test-*")), "SIGKILL skips every cleanup"
    p = subprocess.run([*argv, "--plan-only"], env={**env, "PIP_INDEX_URL": kit["index"]}, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert not list(tmp.glob("nlpsetup-recipe-test-*")), "the next run removes the home of a killed one"


@pytest.mark.installed(("e", "pip"))
def test_a_remove_that_cannot_delete_every_file_says_so(cli, home):
    stuck = home / "envs" / "e" / "stuck"
    stuck.mkdir()
    (stuck / "f").write_text("x")
    if os.geteuid() == 0:  # root ignores permissions: an immutable file is what root cannot delete
        if subprocess.run(["chattr", "+i", str(stuck / "f")], capture_output=True).returncode != 0:
            pytest.skip("needs a non-root user or chattr")
    else:
        stuck.chmod(0o500)
    try:
        code, _, err = cli("remove", "e", "--yes")
        assert code == 1 and "could not be deleted" in err and "rm -rf" in err, err
        assert not (home / "envs" / "e").exists() and cli("envs")[0] == 0
    finally:
        for t in (home / "envs").glob(".e.trash-*"):
            subprocess.run(["chattr", "-i", str(t / "stuck" / "f")], capture_output=True)
            (t / "stuck").chmod(0o700)


def test_a_smoke_command_in_its_own_session_is_stopped_at_its_time_limit_during_install(kit, cli, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "sessiontool.toml").write_text(installkit.RECIPE.format(
        name="sessiontool", id="1", packages='"tinytool==2.0.0"', extra="",
        smoke='commands = [["setsid", "-w", "env", "-i", "sleep", "297"]]', timeout=2))
    start = time.monotonic()
    code, _, err = cli("install", "sessiontool", "--backend", "pip",
                       env={"NLPSETUP_RECIPES_PATH": os.pathsep.join([str(recipes), kit["recipes"]])})
    assert code == 1 and "timed out" in err and time.monotonic() - start < 60, err
    left = subprocess.run(["pgrep", "-f", "sleep 297"], capture_output=True, text=True).stdout.split()
    assert not left, "the smoke check's own session outlived its time limit"


def test_another_variant_over_an_env_needs_force(kit, cli, home, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    one = installkit.RECIPE.format(name="twovar", id="2", packages='"tinytool==2.0.0"', extra="",
                                   smoke='imports = ["tinytool"]', timeout=60)
    (recipes / "twovar.toml").write_text(one + '\n[[variants]]\nid = "1"\npython = ">=3.8"\n'
                                         'packages = ["tinytool==1.0.0"]\n[variants.smoke]\nimports = ["tinytool"]\n')
    env = {"NLPSETUP_RECIPES_PATH": os.pathsep.join([str(recipes), kit["recipes"]])}
    assert cli("install", "twovar", "--backend", "pip", env=env)[0] == 0
    code, _, err = cli("install", "twovar", "--variant", "1", "--backend", "pip", env=env)
    figures.add("replacements refused")
    assert code == 2 and "already holds twovar 2" in err and "twovar 1" in err, err
    code, _, err = cli("install", "twovar", "--variant", "1", "--backend", "pip", "--force", env=env)
    assert code == 0, err


# --- 10. issue 20: derived names, links, daemons, leftovers ------------------------------------


@pytest.mark.installed(("proj", "pip"))
def test_keep_failed_never_deletes_a_folder_nlpsetup_did_not_make(cli, home):
    mine = home / "envs" / "proj.failed"
    mine.mkdir()
    (mine / "data.txt").write_text("mine")
    code, _, err = cli("install", "brokenimport", "--name", "proj", "--force", "--keep-failed", "--backend", "pip")
    assert code == 1 and "proj.failed-2" in err, err
    assert (mine / "data.txt").read_text() == "mine" and tool_of(home, "proj") == "tinytool"
    kept = home / "envs" / "proj.failed-2"
    assert (kept / ".nlpsetup-env").is_file()
    # a failed env nlpsetup kept there itself is replaced, not piled up
    code, _, err = cli("install", "brokenimport", "--name", "proj", "--force", "--keep-failed", "--backend", "pip")
    assert code == 1 and "proj.failed-2" in err and not (home / "envs" / "proj.failed-3").exists(), err
    # a backup name holding a folder without nlpsetup's mark: refused, never deleted
    theirs = home / "envs" / ".proj.backup"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    code, _, err = cli("install", "nlpdemo", "--name", "proj", "--force", "--backend", "pip")
    assert code == 2 and "cannot prove it made it" in err and (theirs / "notes.txt").read_text() == "mine", err
    assert tool_of(home, "proj") == "tinytool"
    code, _, err = cli("install", "tinytool", "--name", "proj.failed-2")
    assert code == 2 and "leftovers" in err
    figures.add("user files kept", 2)


DAEMON = r"""
import os, sys, time
env, pidfile = sys.argv[1], sys.argv[2]
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
def mark():
    with open(os.path.join(env, "daemon-was-here.txt"), "a") as f:
        f.write("x\n")
mark()
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
while True:
    time.sleep(0.05)
    try:
        mark()
    except OSError:
        pass
"""


def test_a_checks_daemon_in_its_own_session_is_dead_before_the_rollback_restores_the_env(kit, cli, home, tmp_path):
    """The check starts a daemon with an empty environment (no token) in a session of its own that
    keeps writing into the env, then fails: the env put back must never see it."""
    pidfile = tmp_path / "daemon.pid"
    code = ("import os, subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', {DAEMON!r}, sys.prefix, {str(pidfile)!r}], env={{}}, "
            "start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            f"while not os.path.exists({str(pidfile)!r}):\n    time.sleep(0.05)\n"
            "raise SystemExit('failing after starting a daemon')\n")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "daemontool.toml").write_text(installkit.RECIPE.format(
        name="daemontool", id="1", packages='"tinytool==2.0.0"', extra="", smoke=f"code = {json.dumps(code)}",
        timeout=60))
    assert cli("install", "tinytool", "--name", "e", "--backend", "pip")[0] == 0
    mine = user_file(home, "e")
    pid = None
    try:
        code, _, err = cli("install", "daemontool", "--name", "e", "--force", "--backend", "pip",
                           env={"NLPSETUP_RECIPES_PATH": os.pathsep.join([str(recipes), kit["recipes"]])})
        assert code == 1 and "back in place" in err, err
        pid = int(pidfile.read_text())
        assert not proc._alive(pid), "the check's daemon outlived the rollback"
        assert not (home / "envs" / "e" / "daemon-was-here.txt").exists(), "the daemon wrote into the restored env"
        assert tool_of(home, "e") == "tinytool" and mine.read_text() == "mine"
    finally:
        if pid is not None and proc._alive(pid):
            os.kill(pid, signal.SIGKILL)
    figures.add("daemons stopped before a rollback")


@pytest.mark.installed(("e", "pip"))
def test_leftovers_of_a_killed_nlpsetup_are_reported_then_cleaned(cli, home):
    dead = subprocess.Popen(["true"])
    dead.wait()
    trash = home / "envs" / f".e.backup.trash-{dead.pid}"
    (trash / "lib").mkdir(parents=True)
    tmp = home / "journal" / f".e.json.{dead.pid}.tmp"
    tmp.parent.mkdir(exist_ok=True)
    tmp.write_text('{"env": "e", "pha')
    code, out, _ = cli("doctor", "--quick", "--json")
    shown = {c["path"] for c in json.loads(out)["checks"] if c["id"] == "env.leftover"}
    assert {str(trash), str(tmp)} <= shown, shown
    code, _, err = cli("envs")
    assert code == 0 and str(trash) in err and str(tmp) in err, err
    assert not trash.exists() and not tmp.exists() and no_leftovers(home)
    count_env(home, "e", cli("verify", "e")[0] != 0)


def test_a_snapshot_that_runs_out_of_inodes_says_so_in_one_line(kit, home, tmp_path):
    """A real small filesystem (tmpfs, in a user and mount namespace of its own) with inodes for the
    env and a few files more: add's hard-linked snapshot needs one per folder and file."""
    small = tmp_path / "small"
    small.mkdir()
    script = (
        'set -e; mount -t tmpfs -o size=400m none "$1"\n'
        '"$2" -m nlpsetup install tinytool --name e --backend pip >/dev/null\n'
        'used=$(df --output=iused "$1" | tail -1)\n'
        'mount -o remount,nr_inodes=$((used + 12)) "$1"\n'
        'set +e; "$2" -m nlpsetup add e tinytool 2>"$1/../err"; echo "exit=$?"\n'
        'ls -a "$1/home/envs"\n'
        'mount -o remount,nr_inodes=$((used + 5000)) "$1"; "$2" -m nlpsetup verify e >/dev/null; echo "verify=$?"\n')
    env = installkit.environ(kit, small / "home")
    p = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(small),
                        sys.executable], capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0 and "unshare" in p.stderr:
        pytest.skip(f"no user namespaces here: {p.stderr.strip()}")
    err = (tmp_path / "err").read_text()
    assert "exit=1" in p.stdout and "disk full: no inodes left on" in err, p.stdout + p.stderr + err
    assert len(err) < 600 and "Traceback" not in err, err
    assert ".e.snapshot" not in p.stdout and ".e.backup" not in p.stdout and "verify=0" in p.stdout, p.stdout
