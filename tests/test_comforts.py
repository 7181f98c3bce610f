"""Expected comforts: the activation hint for the user's shell and OS, the Python that fits several
tools, --fetch-python refusing what uv cannot download, and diagnoses that tell an offline cache
miss, an unreachable index and "no release fits" apart (real failed installs on the local index)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import installkit
from nlpsetup.base import diagnose
from nlpsetup.base.errors import NlpsetupError
from nlpsetup.envs.env import Env
from nlpsetup.facts.host import Host
from nlpsetup.plan import planning
from nlpsetup.resolve.backends import find_uv

UV = find_uv()
needs_uv = pytest.mark.skipif(not UV, reason="uv is not installed (pip install 'nlpsetup[uv]')")


@pytest.mark.parametrize(("os_name", "shell", "expected"), [
    ("linux", "/bin/bash", "source /e/bin/activate"),
    ("linux", "/usr/bin/fish", "source /e/bin/activate.fish"),
    ("macos", "/bin/tcsh", "source /e/bin/activate.csh"),
    ("macos", "/bin/zsh", "source /e/bin/activate"),
    ("linux", "/usr/bin/nu", "overlay use /e/bin/activate.nu"),
    ("linux", "/usr/bin/pwsh", "& /e/bin/Activate.ps1"),
    ("windows", "", "/e/Scripts/Activate.ps1  (PowerShell)  or  /e/Scripts/activate.bat  (cmd)"),
])
def test_activation_hint_fits_the_shell_and_os(os_name, shell, expected):
    assert Env.at("/e", os_name).activate_command({"SHELL": shell}) == expected


def test_install_prints_the_fish_activation_for_a_fish_user(kit, tmp_path):
    code, out, err = installkit.nlpsetup(kit, tmp_path / "home", "install", "tinytool", "-q", SHELL="/usr/bin/fish")
    assert code == 0, err
    assert f"source {tmp_path / 'home' / 'envs' / 'tinytool' / 'bin' / 'activate.fish'}" in out
    assert (tmp_path / "home" / "envs" / "tinytool" / "bin" / "activate.fish").is_file()


def test_tools_that_cannot_share_the_default_python_get_the_one_that_fits_them_all(run_cli):
    code, _, err = run_cli("install", "spacy", "adaptnlp", "--dry-run", env={"PIP_CONFIG_FILE": "/dev/null"})
    assert code == 3
    # spacy and adaptnlp meet at 3.8 and 3.9 (adaptnlp 0.3.7 / 0.3.3): the newest such Python is offered
    m = re.search(r"all of them fit Python (3\.\d+): nlpsetup install spacy adaptnlp --python (3\.\d+)", err)
    assert m and m.group(1) == m.group(2) == "3.9", err
    code, _, err = run_cli("install", "spacy", "adaptnlp", "--python", m.group(2), "--dry-run",
                           env={"PIP_CONFIG_FILE": "/dev/null"})
    assert code == 0, err  # the suggestion works as typed


@needs_uv
def test_fetch_python_refuses_a_version_uv_cannot_download():
    offered = planning.uv_downloads(UV)
    assert offered and "3.12" in offered
    host = Host(os="linux", arch="x86_64", tools=(("uv", UV),))
    with pytest.raises(NlpsetupError) as exc:
        planning._check_downloadable("3.5", host)
    assert exc.value.exit_code == 3 and "uv cannot download CPython 3.5" in exc.value.message
    planning._check_downloadable("3.12", host)  # one it can: no error


def _dead_index() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/simple"


@needs_uv
@pytest.mark.parametrize(("tool", "extra", "words"), [
    ("tinytool", {"UV_OFFLINE": "1", "PIP_INDEX_URL": "DEAD"}, "offline, and the package is not in the cache"),
    ("tinytool", {"PIP_INDEX_URL": "DEAD"}, "network unreachable"),
    ("needsold", {}, "no release fits"),
], ids=["offline-cache-miss", "unreachable-index", "no-release-fits"])
def test_diagnoses_tell_offline_unreachable_and_no_release_apart(kit, tmp_path, tool, extra, words):
    extra = {k: (_dead_index() if v == "DEAD" else v) for k, v in extra.items()}
    code, out, err = installkit.nlpsetup(kit, tmp_path / "home", "install", tool, "--backend", "uv",
                                         UV_CACHE_DIR=str(tmp_path / "empty-cache"), **extra)
    assert code == 1 and f"likely cause: {words}" in out + err, (out, err)


@pytest.mark.parametrize(("lines", "words"), [
    (["error: Network connectivity is disabled, but the requested data wasn't found in the cache for: `x`"],
     "offline"),
    (["ERROR: HTTP error 401 while getting https://idx/simple/x/"], "refused the request"),
    (["error: Request failed after 3 retries", "Caused by: Connection refused (os error 111)"], "network unreachable"),
    (["× No solution found when resolving dependencies:", "Because there is no version of x==9"], "no release fits"),
])
def test_diagnosis_table(lines, words):
    assert words in diagnose.diagnose(lines)


def test_completion_of_tool_names_is_fast_and_needs_no_recipe_parsing(tmp_path, monkeypatch):
    from nlpsetup.cli import completion

    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "zzbroken.toml").write_text("this is not toml [")
    monkeypatch.setenv("NLPSETUP_RECIPES_PATH", str(folder))
    assert "zzbroken" in completion.tool_names(None, None, "zz")
    assert "spacy" in completion.tool_names(None, None, "sp")
    p = subprocess.run([sys.executable, "-m", "nlpsetup", "completion", "fish"], capture_output=True, text=True)
    assert p.returncode == 0 and "complete" in p.stdout and Path(sys.executable).exists()


def test_long_downloads_show_plain_progress_lines_of_what_was_written_not_the_disks_usage(monkeypatch, tmp_path):
    import io
    import shutil
    import threading

    from nlpsetup.ui import progress

    used = iter(range(0, 10**12, 4 << 20))  # other programs fill the disk by 4 MB at each look: not ours
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, next(used), 0))
    monkeypatch.setenv("NLPSETUP_PROGRESS_INTERVAL", "0.05")
    monkeypatch.setattr(progress, "METER_EVERY", 0.0)
    watched = tmp_path / "env"
    watched.mkdir()

    class Stream(io.StringIO):  # not a terminal; says when a progress line was written
        wrote = threading.Event()

        def write(self, text):
            if "..." in text:
                self.wrote.set()
            return super().write(text)

    stream = Stream()
    r = progress.TermReporter(stream=stream, ci=False, watch=[watched])
    r.step_start("install", "install spacy (3.8)")
    assert not stream.wrote.wait(0.5), "the disk's usage grew, but nothing was written where nlpsetup's children write"
    # a child writes 3 MB; it lands whole (renamed in), so no look can see it half-written
    (tmp_path / "wheel.whl").write_bytes(b"x" * (3 << 20))
    (tmp_path / "wheel.whl").rename(watched / "wheel.whl")
    assert stream.wrote.wait(60)
    r.step_end("install", True, 0.7)
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("  ...  install: +3.0 MB written") and "MB/s" in line for line in lines), lines
    assert "\r" not in stream.getvalue() and "\033" not in stream.getvalue()
    assert lines[-1].startswith("  ok   install")

    stream = io.StringIO()
    r = progress.TermReporter(stream=stream, ci=False, watch=[watched])
    r.step_start("smoke", "run the smoke checks")  # not a download: no meter
    r.step_end("smoke", True, 0.3)
    assert "written" not in stream.getvalue()


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal and POSIX signals")
def test_progress_fits_a_narrow_terminal_and_ctrl_c_ends_on_a_clean_line(kit, tmp_path):
    """In a 40-column terminal: every live line (between carriage returns) fits, whatever the label's
    length, and the error after Ctrl-C starts at the start of a cleared line."""
    import os
    import pty
    import signal
    import threading

    home = tmp_path / "home"
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def read_all():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    with installkit.SlowIndex(kit, delay=60) as slow:
        env = {**installkit.environ(kit, home, PIP_INDEX_URL=slow.url, UV_INDEX_URL=slow.url), "NO_PROXY": "127.0.0.1",
               "COLUMNS": "40", "TERM": "xterm"}
        env.pop("CI", None)
        p = subprocess.Popen([sys.executable, "-m", "nlpsetup", "install", "nlpdemo", "--name",
                              "an-env-with-a-name-far-longer-than-forty-columns", "--backend", "pip"],
                             env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        assert slow.requested.wait(120), "the install never reached the index"
        while b"\r  " not in b"".join(chunks):  # the spinner has drawn a line
            assert p.poll() is None, b"".join(chunks)
            reader.join(0.1)
        p.send_signal(signal.SIGINT)
        assert p.wait(60) == 130
        reader.join(30)
        os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    shown = [seg for line in text.replace("\033[K", "").split("\n") for seg in line.split("\r")]
    progress = [seg for seg in shown if re.match(r"  ([⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]|ok  |FAIL) ", seg)]  # spinner, steps
    assert any("…" in line for line in progress) and any(line.startswith("  ok  ") for line in progress), text
    assert all(len(line) <= 39 for line in progress), progress
    error = text.rindex("nlpsetup: ")  # the error: "nlpsetup: interrupted ... rolled back"
    assert text[:error].endswith(("\n", "\r\033[K")), text[error - 80:error + 40]
