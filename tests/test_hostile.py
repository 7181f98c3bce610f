"""Hostile and malformed input: a clear one-line error (exit 2) naming the file or argument and
the cause, never a traceback, never a side effect. Plus network faults and corrupt state."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import figures
import installkit
import wheelhouse
from nlpsetup.base.errors import RecipeError
from nlpsetup.recipes import load as recipes

REPO = Path(__file__).resolve().parents[1]


def nlp(env_extra, *args, home, kit=None):
    env = installkit.environ(kit, home, **env_extra) if kit else {**os.environ, "NLPSETUP_HOME": str(home), **env_extra}
    p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], capture_output=True, text=True, env=env,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


HOSTILE_ARGS = [
    (["install", "spacy", "--name", "../../etc"], "invalid env name"),
    (["install", "spacy", "--name", "a/b"], "invalid env name"),
    (["install", "spacy", "--name", "CON"], "reserved device name"),
    (["install", "spacy", "--name", "x\x07y"], "invalid env name"),
    (["install", "spacy", "--name", ".."], "invalid env name"),
    (["install", "spacy", "--name", "x\n"], "invalid env name"),  # a full match: `$` admits a final newline
    (["plan", "spacy", "--name", "x\n"], "invalid env name"),
    (["install", "spacy", "--name", ""], "invalid env name ''"),  # not a request for the default name
    (["install", "spacy", "tinytool", "--name", ""], "invalid env name ''"),
    (["plan", "spacy", "--name", ""], "invalid env name ''"),
    (["install", "spacy", "--name=-rf"], "must not start with '-'"),
    (["install", "--from-lock", "/etc/hostname", "--name", ""], "is not JSON"),
    (["install", "--index-url=http://evil/simple"], "No such option"),
    (["install", "-e ."], "No such option"),
    (["install", "spacy @ https://evil/x.whl"], "not allowed"),
    (["plan", "spacy; os_name=='nt'"], "not allowed"),
    (["plan", "spacy", "--python", "/etc/passwd"], "not a Python interpreter"),
    (["plan", "spacy", "--python", "3.x"], "neither a Python request"),
    (["run", "../x", "--", "python"], "invalid env name"),
    (["remove", "../x", "--yes"], "invalid env name"),
    (["lock", "nope"], "no env named 'nope'"),
    (["verify", "nope"], "no env named 'nope'"),
    (["install", "--from-lock", "/etc/hostname"], "is not JSON"),
    (["install", "--from-lock", "/nonexistent.json"], "--from-lock"),
]


@pytest.mark.parametrize(("args", "words"), HOSTILE_ARGS, ids=[" ".join(a)[:40] for a, _ in HOSTILE_ARGS])
def test_hostile_arguments_are_refused_with_one_line_and_no_side_effect(tmp_path, args, words):
    home = tmp_path / "home"
    code, out, err = nlp({}, *args, home=home)
    figures.add("hostile inputs tried")
    assert code == 2, (out, err)
    assert words in err and "Traceback" not in err
    assert not (home / "envs").exists() or not list((home / "envs").iterdir())
    assert not (tmp_path / "etc").exists()


def test_host_file_that_is_not_a_host(tmp_path):
    for content, words in (("[1, 2]", "not a host description"), ('{"os": "plan9"}', "'os' must be one of"),
                           ("\xff\xfe", "not JSON"), ("null", "not a host description"),
                           ('{"os": "linux", "pythons": "3.9"}', "pythons: must be a list, got a string"),
                           ('{"os": "linux", "pythons": [{"path": "/x"}]}', "pythons[0].version: is required"),
                           ('{"os": "linux", "gpu": {"gpus": [null]}}', "gpu.gpus[0]: must be a table, got null"),
                           ('{"os": "linux", "gpu": {"gpus": [{}]}}', "missing key 'name'"),
                           ('{"os": "linux", "libc_version": 2.31}', "libc_version: must be a string or null"),
                           ('{"os": "linux", "index": []}', "index: must be a table, got a list"),
                           ('{"os": "linux", "tools": {"git": null}}', "tools.git: must be a string, got null"),
                           ('{"os": "linux", "wsl": "no"}', "wsl: must be a boolean")):
        f = tmp_path / "h.json"
        f.write_bytes(content.encode("latin-1"))
        code, _, err = nlp({}, "plan", "spacy", "--host-file", str(f), home=tmp_path / "home")
        figures.add("hostile inputs tried")
        assert code == 2 and words in err and f"--host-file {f}" in err and "Traceback" not in err, err


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_nlpsetup_home_that_cannot_be_used(tmp_path, kind):
    if kind == "file":
        home = tmp_path / "afile"
        home.write_text("")
        words = "is a file"
    else:
        if os.geteuid() == 0:
            home = Path("/proc/nlpsetup-home")  # even root cannot create a directory here
            words = "cannot create NLPSETUP_HOME"
        else:
            home = tmp_path / "ro"
            home.mkdir(mode=0o500)
            words = "not writable"
    code, _, err = nlp({}, "install", "spacy", "--dry-run", home=home)
    figures.add("hostile inputs tried")
    # a file is bad input (2); a home that cannot be written fails the operation (1), as a full disk does
    assert code == (2 if kind == "file" else 1) and words in err and str(home) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # the error and its hint


def test_a_broken_recipe_in_a_user_folder_cannot_break_plan_of_others(tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "evil.toml").write_text('name = "evil"\nsummary = "s"\nhomepage = "h"\nstatus = "active"\n'
                                      '[[variants]]\npython = ">=3"\npackages = ["--index-url=http://evil"]\n')
    (folder / "big.toml").write_bytes(b"#" * 2_000_000)
    code, out, err = nlp({"NLPSETUP_RECIPES_PATH": str(folder), "PIP_INDEX_URL": tmp_path.as_uri()}, "plan", "evil",
                         home=tmp_path / "h")  # an empty index: "evil" is neither a recipe nor a package
    figures.add("hostile inputs tried", 2)
    # The user's own evil.toml is what they meant: its problem is the error (not "unknown tool", not a search)
    assert code == 2 and f"nlpsetup: error: {folder / 'evil.toml'}: " in err and "cannot be a pip option" in err
    assert "searching" not in err
    code, out, err = nlp({"NLPSETUP_RECIPES_PATH": str(folder)}, "plan", "spacy", "--json", home=tmp_path / "h")
    assert code == 0 and "evil.toml" in err and "cannot be a pip option" in err and "big.toml" in err


# property: any document either loads as a valid recipe or raises the one user-facing error ------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=30),
                    st.sampled_from([">=3.8", "==3.9.*", "spacy>=3", "-e .", "linux", "windows", "x86_64",
                                     "active", "cu118", "numpy<1.24", "", "3.10"]))
KEYS = st.sampled_from(["name", "summary", "homepage", "status", "aliases", "notes", "variants", "python", "packages",
                        "platforms", "arch", "pins", "smoke", "timeout", "imports", "code", "framework", "id",
                        "env", "companions", "cuda_packages", "req", "why", "glibc", "extra"])
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEYS, inner, max_size=6)), max_leaves=25)




def _dump(doc: dict) -> str:
    """A tiny TOML writer: inline tables and arrays only (enough for generated documents)."""
    def value(v):
        if v is None:
            return '""'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
    return "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in doc.items())


BASE = {"name": "demo", "summary": "s", "homepage": "h", "status": "active",
        "variants": [{"python": ">=3.8", "packages": ["demo"], "smoke": {"imports": ["demo"]}}]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, VALUES, max_size=8), st.booleans())
def test_any_document_loads_or_raises_the_one_user_facing_error(doc, merge):
    figures.add("hostile inputs tried")
    if merge:
        doc = {**BASE, **doc}
    text = _dump(doc)
    try:
        r = recipes.parse(text, "demo.toml", stem="demo")
    except RecipeError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    assert r.name == "demo" and r.variants and all(v.packages for v in r.variants)
    for v in r.variants:
        assert not any(p.lstrip().startswith("-") for p in v.packages)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_load_or_raise_the_one_user_facing_error(tmp_path_factory, data):
    figures.add("hostile inputs tried")
    f = tmp_path_factory.mktemp("bytes") / "demo.toml"
    f.write_bytes(data)
    try:
        recipes.load_file(f)
    except RecipeError:
        pass


def test_no_subprocess_is_ever_given_a_shell():
    sources = "\n".join(p.read_text() for p in (REPO / "installer" / "nlpsetup").rglob("*.py"))
    assert "shell=True" not in sources and "os.system(" not in sources and "os.popen(" not in sources


# network faults and corrupt state ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _CutHandler(http.server.SimpleHTTPRequestHandler):
    """Serves index pages, but cuts every wheel download half-way."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.endswith(".whl"):
            path = Path(self.translate_path(self.path))
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        super().do_GET()


class _DeepJsonHandler(http.server.BaseHTTPRequestHandler):
    """An index whose every page is PEP 691 JSON nested 100,000 deep: json.loads runs out of stack."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b"[" * 100_000 + b"]" * 100_000
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_an_index_answering_deeply_nested_json_gets_one_line(tmp_path):
    from nlpsetup.index import pages

    with pytest.raises(ValueError, match="nested too deeply"):
        pages.parse_page(b"[" * 100_000 + b"]" * 100_000, "application/vnd.pypi.simple.v1+json",
                         "https://index.example/simple/x/")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DeepJsonHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"PIP_INDEX_URL": f"http://127.0.0.1:{server.server_address[1]}/simple"}
        code, out, err = nlp(env, "recipe", "outdated", "spacy", home=tmp_path / "h")
    finally:
        server.shutdown()
    figures.add("hostile inputs tried")
    assert code == 1 and "nested too deeply" in out + err and "Traceback" not in err, (out, err)


@pytest.mark.parametrize("backend", ["pip", "uv"])
@pytest.mark.parametrize("fault", ["unreachable", "cut", "corrupt", "enospc"])
@pytest.mark.installed(("env", "pip"))
def test_network_and_disk_faults_fail_cleanly_and_keep_the_old_env(kit, home, tmp_path, fault, backend):
    from nlpsetup.resolve.backends import find_uv

    if backend == "uv" and not find_uv():
        pytest.skip("uv is not installed")
    before = (home / "envs" / "env" / "nlpsetup.json").read_text()
    extra, expected, server = {}, "", None
    if fault == "unreachable":
        extra["PIP_INDEX_URL"] = f"http://127.0.0.1:{_free_port()}/simple"
        expected = "network unreachable"
    elif fault == "cut":
        root = Path(kit["recipes"]).parent / "index"
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_CutHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        extra["PIP_INDEX_URL"] = f"http://127.0.0.1:{server.server_address[1]}/main/simple"
        expected = ""  # pip and uv word a cut download differently; the env must survive either way
    elif fault == "corrupt":
        bad = tmp_path / "bad"
        whl = wheelhouse.build_wheel(bad / "build", "tinytool", "3.0.0", files={"tinytool/__init__.py": "V = 3\n"})
        url = wheelhouse.write_simple_index(bad / "index", [whl])
        target = next((bad / "index" / "files").glob("*.whl"))
        target.write_bytes(target.read_bytes()[:200] + b"garbage")  # the index's hash no longer matches
        extra["PIP_INDEX_URL"] = url
        expected = "corrupt"
    else:
        wheelhouse.build_sdist_that_fails(tmp_path / "nospace", "tinytool", "3.0.0", "",
                                          setup_py="raise OSError(28, 'No space left on device')\n")
        url = wheelhouse.write_simple_index(tmp_path / "nospace-index", list((tmp_path / "nospace").glob("*")))
        extra["PIP_INDEX_URL"] = url
        expected = "disk full"
    extra["UV_CACHE_DIR"] = str(tmp_path / "uvcache")  # a clean cache: the fault must be met, not skipped
    extra["PIP_NO_CACHE_DIR"] = "1"
    recipes_dir = tmp_path / "r"
    recipes_dir.mkdir()
    (recipes_dir / "tinytool.toml").write_text(installkit.RECIPE.format(
        name="tinytool", id="3", packages='"tinytool>=2.0"', extra="", smoke='imports = ["tinytool"]', timeout=60))
    extra["NLPSETUP_RECIPES_PATH"] = str(recipes_dir)
    code, out, err = nlp(extra, "install", "tinytool", "--name", "env", "--backend", backend, "--force",
                         "--step-timeout", "120", home=home, kit=kit)
    if server:
        server.shutdown()
    figures.add("fault points exercised")
    if fault == "cut" and code == 0:
        pytest.fail("a download cut half-way cannot give a working install")
    assert code == 1, (out, err)
    assert expected in err and "Traceback" not in err.split("last lines:")[0]
    assert "the previous env is back in place" in err
    assert (home / "envs" / "env" / "nlpsetup.json").read_text() == before
    lost = nlp({}, "verify", "env", home=home, kit=kit)[0] != 0
    figures.add("envs lost", int(lost))
    assert not lost


@pytest.mark.installed(("env", "pip"))
def test_a_truncated_journal_or_manifest_is_reported_never_a_crash(kit, home):
    (home / "journal").mkdir(exist_ok=True)
    (home / "journal" / "env.json").write_text('{"env": "env", "pha')  # truncated mid-write
    code, out, err = nlp({}, "doctor", "--quick", "--json", home=home, kit=kit)
    figures.add("hostile inputs tried")
    assert code == 1 and "Traceback" not in err
    assert any(c["id"] == "env.interrupted" for c in json.loads(out)["checks"])
    code, _, err = nlp({}, "envs", home=home, kit=kit)  # the next command recovers from disk state
    assert code == 0 and "Traceback" not in err and (home / "envs" / "env" / "nlpsetup.json").exists()
    (home / "envs" / "env" / "nlpsetup.json").write_text("{\"schema_version\": 1, \"tools")
    for cmd in (["envs"], ["verify", "env"], ["lock", "env"], ["doctor", "--quick"]):
        code, _, err = nlp({}, *cmd, home=home, kit=kit)
        figures.add("hostile inputs tried")
        assert code in (0, 1, 2) and "Traceback" not in err, (cmd, err)


def test_smoke_code_runs_in_the_env_interpreter_not_in_nlpsetup(kit, tmp_path):
    recipes_dir = tmp_path / "r"
    recipes_dir.mkdir()
    marker = tmp_path / "where.txt"
    (recipes_dir / "tinytool.toml").write_text(installkit.RECIPE.format(
        name="tinytool", id="1", packages='"tinytool"', extra="",
        smoke=f'code = "import sys; open({str(marker)!r}, \'w\').write(sys.prefix)"', timeout=60))
    code, _, err = nlp({"NLPSETUP_RECIPES_PATH": str(recipes_dir)}, "install", "tinytool", "--backend", "pip",
                       home=tmp_path / "home", kit=kit)
    assert code == 0, err
    assert marker.read_text() == str(tmp_path / "home" / "envs" / "tinytool")


def test_a_recipe_or_lock_cannot_send_the_install_outside_the_env(kit, tmp_path):
    home, target = tmp_path / "home", tmp_path / "escaped"
    folder = tmp_path / "r"
    folder.mkdir()
    evil = folder / "tinytool.toml"
    evil.write_text(installkit.RECIPE.format(name="tinytool", id="1", packages='"tinytool"', timeout=60,
                                             extra=f'env = {{ PIP_TARGET = "{target}" }}', smoke='imports = ["tinytool"]'))
    code, out, err = nlp({}, "recipe", "check", str(evil), home=home)
    figures.add("hostile inputs tried")
    assert code == 2 and f"{evil}: line 10: variants[0].env.PIP_TARGET" in out + err and "Traceback" not in err
    code, _, err = nlp({"NLPSETUP_RECIPES_PATH": str(folder)}, "install", "tinytool",
                       "--backend", "pip", home=home, kit=kit)
    assert code == 2 and "PIP_TARGET" in err and "Traceback" not in err
    assert not target.exists() and not (home / "envs" / "tinytool").exists()
    # a lock is not a recipe, and is checked again where the install starts
    assert nlp({}, "install", "tinytool", "--backend", "pip", home=home, kit=kit)[0] == 0
    lock = tmp_path / "lock.json"
    assert nlp({}, "lock", "tinytool", "-o", str(lock), home=home, kit=kit)[0] == 0
    data = json.loads(lock.read_text())
    for key in ("install_env", "env"):  # the lock's install variables, and its smoke check's
        broken = json.loads(json.dumps(data))
        (broken if key == "install_env" else broken["tools"][0]["smoke"])[key] = {"PIP_TARGET": str(target)}
        lock.write_text(json.dumps(broken))
        code, _, err = nlp({}, "install", "--from-lock", str(lock), "--name", "again", "--backend", "pip",
                           home=home, kit=kit)
        figures.add("hostile inputs tried")
        assert code == 2 and "PIP_TARGET" in err and "Traceback" not in err, (key, err)
        assert not target.exists() and not (home / "envs" / "again").exists()


_DISK_DRIVER = """
import json, os, subprocess, sys
sys.path.insert(0, {tests!r})
import installkit
kit, root, mode = json.loads({kit!r}), {root!r}, {mode!r}
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", root], check=True)
home = os.path.join(root, "home")
def nl(*args):
    p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], env=installkit.environ(kit, home),
                       capture_output=True, text=True, timeout=300)
    return [p.returncode, p.stdout, p.stderr]
out = {{"setup": nl("install", "tinytool", "--backend", "pip")}}
if mode == "full":
    with open(os.path.join(root, "filler"), "wb") as f:
        try:
            while True:
                f.write(bytes(1 << 20))
        except OSError:
            pass
else:
    subprocess.run(["mount", "-o", "remount,ro", root], check=True)
for cmd in (["install", "tinytool", "--force", "--backend", "pip"], ["install", "tinytool", "--name", "new"],
            ["lock", "tinytool", "-o", os.path.join(root, "lock.json")], ["remove", "tinytool", "--yes"],
            ["install", "tinytool", "--force", "--json"]):
    out[" ".join(cmd)] = nl(*cmd)
subprocess.run(["mount", "-o", "remount,rw", root], check=True)
if mode == "full":
    os.unlink(os.path.join(root, "filler"))
out["verify"] = nl("verify", "tinytool")
out["envs"] = sorted(os.listdir(os.path.join(home, "envs")))
print(json.dumps(out))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="a private tmpfs needs Linux namespaces")
@pytest.mark.parametrize("mode", ["full", "read-only"])
def test_a_full_disk_or_read_only_home_is_one_line_and_loses_nothing(kit, tmp_path, mode):
    """A real full (or read-only) file system: a tmpfs in a mount namespace of the test's own."""
    root = tmp_path / "disk"
    root.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(_DISK_DRIVER.format(tests=str(Path(__file__).parent), kit=json.dumps(kit), root=str(root),
                                          mode=mode))
    try:
        p = subprocess.run(["unshare", "-rm", sys.executable, str(driver)], capture_output=True, text=True,
                           timeout=900)
    except FileNotFoundError:
        pytest.skip("no unshare")
    if p.returncode != 0 and ("unshare" in p.stderr or "mount" in p.stderr):
        pytest.skip(f"cannot mount a private tmpfs here: {p.stderr.strip()[-200:]}")
    out = json.loads(p.stdout)
    assert out.pop("setup")[0] == 0
    verify, envs = out.pop("verify"), out.pop("envs")
    for cmd, (code, stdout, err) in out.items():
        figures.add("fault points exercised")
        text = err or stdout
        assert code == 1, (cmd, text)
        assert "Traceback" not in text and str(root) in text, (cmd, text)
        if "--json" in cmd:
            assert json.loads(stdout)["error"]["exit_code"] == 1
        else:
            assert len([ln for ln in err.splitlines() if ln.startswith("nlpsetup: error")]) == 1, (cmd, err)
    lost = verify[0] != 0 or envs != ["tinytool"]
    figures.add("envs lost", int(lost))
    assert not lost, (verify, envs)


MANIFEST_DAMAGE = {  # what a hand edit, a bad sync or a hostile user leaves, and the field named
    "null tools": (lambda d: d.update(tools=None), "tools: must be a list, got null"),
    "a list for a table": (lambda d: d.update(interpreter=[]), "interpreter: must be a table, got a list"),
    "a number for a version": (lambda d: d["distributions"].update(tinytool=2), "distributions.tinytool: must be"),
    "a string for a command": (lambda d: d["tools"][0]["smoke"].update(commands="rm -rf ~"),
                               "tools[0].smoke.commands: must be a list"),
    "a bogus interpreter": (lambda d: d["interpreter"].update(env_python="/bin/sh"), "is not inside the env"),
    "not a table at all": (lambda d: (d.clear(), d.update(schema_version=None)), "is not an nlpsetup manifest"),
}


@pytest.mark.parametrize("damage", MANIFEST_DAMAGE)
@pytest.mark.installed(("good", "pip"), ("bad", "pip"))
def test_one_corrupt_manifest_marks_that_env_and_leaves_the_others_working(kit, home, damage):
    path = home / "envs" / "bad" / "nlpsetup.json"
    data = json.loads(path.read_text())
    change, words = MANIFEST_DAMAGE[damage]
    change(data)
    path.write_text(json.dumps(data))
    figures.add("hostile inputs tried")
    code, out, err = nlp({}, "envs", "--json", home=home, kit=kit)
    assert code == 0 and "Traceback" not in err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["good"]["status"] == "ok" and rows["bad"]["status"] == "corrupt"
    assert str(path) in rows["bad"]["problems"][0] and words in rows["bad"]["problems"][0]
    code, out, err = nlp({}, "verify", home=home, kit=kit)
    assert code == 1 and "good: ok" in out and "bad: FAILED" in out and f"bad: corrupt: {path}" in err
    assert nlp({}, "verify", "good", home=home, kit=kit)[0] == 0
    code, out, err = nlp({}, "doctor", "--quick", "--json", home=home, kit=kit)
    checks = json.loads(out)["checks"]
    assert code == 1 and "Traceback" not in err
    assert any(c["status"] == "failure" and words in c["message"] for c in checks)
    assert any(c["status"] == "ok" and c["message"].startswith("good:") for c in checks)
    code, _, err = nlp({}, "doctor", "--fix", home=home, kit=kit)
    assert "Traceback" not in err and path.exists()  # a corrupt env is reported, never deleted
    for cmd in (["lock", "bad"], ["install", "tinytool", "--name", "bad", "--backend", "pip"],
                ["run", "bad", "--", "python", "-c", "pass"]):
        code, _, err = nlp({}, *cmd, home=home, kit=kit)
        assert code in (0, 1, 2) and "Traceback" not in err, (cmd, err)


def _hostile_files(folder: Path, suffix: str) -> dict[str, str]:
    """Files that hang, exhaust or confuse a naive reader, each with the words its error carries."""
    made = {}
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / f"fifo{suffix}")  # open() alone would wait for a writer forever
        made[f"fifo{suffix}"] = "is a FIFO"
    if Path("/dev/zero").exists():
        (folder / f"zero{suffix}").symlink_to("/dev/zero")  # read() would never end
        made[f"zero{suffix}"] = "is a device"
    (folder / f"dangling{suffix}").symlink_to(folder / "nowhere")
    made[f"dangling{suffix}"] = "No such file"
    (folder / f"loop{suffix}").symlink_to(folder / f"loop{suffix}")
    made[f"loop{suffix}"] = "symbolic links"
    (folder / f"folder{suffix}").mkdir()
    made[f"folder{suffix}"] = "is a folder"
    (folder / f"big{suffix}").write_bytes(b" " * (70 * 2**20))  # over every limit
    made[f"big{suffix}"] = "bytes"
    (folder / f"latin{suffix}").write_bytes(b'{"name": "caf\xe9"}')
    made[f"latin{suffix}"] = "UTF-8"
    (folder / f"deep{suffix}").write_text("a = " + "[" * 100_000 + "]" * 100_000 if suffix == ".toml"
                                          else "[" * 100_000 + "]" * 100_000)
    made[f"deep{suffix}"] = "nested too deeply" if suffix == ".toml" else "recursion"
    return made


def test_a_recipe_folder_of_hostile_files_never_hangs_or_crashes(tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    made = _hostile_files(folder, ".toml")
    env = {"NLPSETUP_RECIPES_PATH": str(folder)}
    code, out, err = nlp(env, "plan", "spacy", "--json", home=tmp_path / "h")  # nlp() has a time limit
    figures.add("hostile inputs tried", len(made))
    assert code == 0 and json.loads(out)["tool"] == "spacy" and "Traceback" not in err
    for name, words in made.items():
        line = next(ln for ln in err.splitlines() if str(folder / name) in ln)
        assert words in line, line
    code, out, err = nlp(env, "list", "--json", home=tmp_path / "h")  # its cache key stats each file
    assert code == 0 and any(r["name"] == "spacy" for r in json.loads(out)) and "Traceback" not in err, err
    code, out, err = nlp(env, "recipe", "check", *(str(folder / n) for n in made if n != "folder.toml"),
                         home=tmp_path / "h")
    assert code == 2 and "Traceback" not in err and all(str(folder / n) in out + err for n in made
                                                        if n != "folder.toml")


def test_a_host_file_that_hangs_or_exhausts_a_reader_is_refused(tmp_path):
    made = _hostile_files(tmp_path, ".json")
    for name, words in made.items():
        code, _, err = nlp({}, "plan", "spacy", "--host-file", str(tmp_path / name), home=tmp_path / "h")
        figures.add("hostile inputs tried")
        if name == "folder.json":  # click refuses a folder itself
            assert code == 2 and "is a directory" in err
            continue
        assert code == 2 and f"--host-file {tmp_path / name}" in err and words in err and "Traceback" not in err, err


_RAW_CONTROLS = set(map(chr, [*range(0, 9), *range(11, 32), *range(127, 160)])) | {"\u202e", "\u2066"}
_ESC = "\\u001b]0;pwned\\u0007\\u001b[2J\\r"  # as TOML writes them: set the title, ring, clear, overwrite


def test_control_characters_from_recipes_and_package_output_are_escaped_when_printed(kit, tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "evil.toml").write_text(f'''\
name = "evil"
summary = "a tool{_ESC}"
homepage = "https://example.org"
status = "active"
notes = "read me\\u202e{_ESC}"

[[variants]]
id = "1"
python = ">=3.8"
python_reason = "needs 3.8{_ESC}"
packages = ["tinytool"]
[[variants.pins]]
req = "tinytool>=1"
why = "because{_ESC}"
[variants.smoke]
code = "import sys; sys.stderr.write('\\\\x1b[2J\\\\x07\\\\r'); raise SystemExit(3)"
timeout = 60
''')
    fails = tmp_path / "fails"
    wheelhouse.build_sdist_that_fails(fails, "buildfails", "1.0.0", "",
                                      setup_py="import sys; sys.stderr.write('\\x1b]0;pwned\\x07\\x1b[2J\\r'); sys.exit(1)\n")
    index = wheelhouse.write_simple_index(tmp_path / "fails-index", list(fails.glob("*")))
    env = {"NLPSETUP_RECIPES_PATH": f"{folder}{os.pathsep}{kit['recipes']}"}
    home = tmp_path / "home"
    outputs = {}
    for args in (["list"], ["show", "evil"], ["plan", "evil"], ["plan", "evil", "--python", "2.7"], ["doctor", "evil"],
                 ["install", "evil", "--backend", "pip"], ["install", "buildfails", "--backend", "pip", "-v"]):
        extra = {**env, "PIP_INDEX_URL": index} if "buildfails" in args else env
        code, out, err = nlp(extra, *args, home=home, kit=kit)
        outputs[" ".join(args)] = (code, out + err)
        figures.add("hostile inputs tried")
    for cmd, (_code, text) in outputs.items():
        assert "Traceback" not in text, (cmd, text)
        assert not _RAW_CONTROLS & set(text), (cmd, repr(text))
    assert "\\x1b]0;pwned\\x07" in outputs["show evil"][1]  # shown, spelt out, not obeyed
    assert outputs["install evil --backend pip"][0] == 1 and "\\x1b[2J" in outputs["install evil --backend pip"][1]
    assert outputs["install buildfails --backend pip -v"][0] == 1
    assert "\\x1b[2J" in outputs["install buildfails --backend pip -v"][1]


_JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                      st.text(max_size=12)),
                            lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                            max_leaves=8)


def _slots(node):
    """(container, key) for every value in a JSON document."""
    keys = node.keys() if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else ()
    for k in list(keys):
        yield node, k
        yield from _slots(node[k])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**6), _JSON_VALUES), min_size=1, max_size=3))
def test_any_damaged_manifest_is_read_or_refused_as_corrupt_and_its_readers_never_crash(tmp_path_factory, edits):
    """Every reader of a manifest (status, smoke checks, drift) gets a document of the right shape."""
    from nlpsetup.envs import manifest
    from nlpsetup.envs.env import Env
    from nlpsetup.envs.status import status
    from nlpsetup.execution import verify as envinfo

    env_path = tmp_path_factory.mktemp("m") / "env"
    python = Env.at(env_path).python
    python.parent.mkdir(parents=True)
    python.touch()
    good = {"schema_version": 1, "env": {"name": "env", "path": str(env_path)},
            "tools": [{"name": "t", "request": "t", "variant": "1", "recipe_digest": "x",
                       "smoke": {"imports": ["t"], "code": "", "commands": [["t"]], "timeout": 5, "env": {}}}],
            "interpreter": {"version": "3.12.1", "implementation": "CPython", "path": None, "source": "path",
                            "env_python": str(python)},
            "distributions": {"t": "1.0"}, "install_env": {}, "constraints": [], "size_bytes": 1}
    doc = json.loads(json.dumps(good))
    for where, value in edits:  # replace one value anywhere in the tree (a table, a list, a leaf)
        slots = list(_slots(doc))
        node, key = slots[where % len(slots)]
        node[key] = value
    manifest.path_of(env_path).write_text(json.dumps(doc))
    figures.add("hostile inputs tried")
    try:
        data = manifest.read(env_path)
    except manifest.Corrupt as exc:
        assert str(manifest.path_of(env_path)) in str(exc)
        assert status(Env.at(env_path), with_size=False, start_python=False).status == "corrupt"
        return
    except manifest.ManifestError:
        return  # a newer schema: said as such
    st_ = status(Env.at(env_path), with_size=False, start_python=False)
    assert st_.status in ("ok", "broken")
    envinfo.smoke_of(data)
    envinfo.drift(data.get("distributions", {}), {"t": "2.0"})


@pytest.mark.parametrize("content", ["[]", '{"version": 1, "entries": []}', '{"version": 1, "entries": {"k": [1]}}',
                                     '{"key": 1, "value": {"rows": [{"name": null}]}}', "fifo"])
def test_a_damaged_cache_is_rebuilt_never_fatal(tmp_path, content):
    home = tmp_path / "home"
    assert nlp({}, "list", home=home)[0] == 0  # writes the caches
    caches = [home / "cache" / "pythons.json", home / "cache" / "list-v1.json"]
    assert all(c.exists() for c in caches)
    for c in caches:
        c.unlink()
        os.mkfifo(c) if content == "fifo" else c.write_text(content)
    for args in (["list"], ["list", "--json"], ["plan", "spacy"]):
        code, out, err = nlp({}, *args, home=home)  # nlp() has a time limit: a FIFO must not hang it
        figures.add("hostile inputs tried")
        assert code == 0 and "spacy" in out and "Traceback" not in err, (args, err)


# --- every command that reads a manifest or a lock, against each field dropped or retyped -------------

_DROP = object()
_RETYPED = [_DROP, None, 5, True, "", "not a version", [], {}, ["x"], {"x": "y"}]


def _key_paths(doc, prefix=()) -> list[tuple]:
    """Every key of a JSON document (a list by its first item), as a path of keys."""
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in [(*prefix, k), *_key_paths(v, (*prefix, k))]]
    if isinstance(doc, list) and doc:
        return [(*prefix, 0), *_key_paths(doc[0], (*prefix, 0))]
    return []


def _mutated(doc, path: tuple, value):
    doc = json.loads(json.dumps(doc))
    *head, last = path
    target = doc
    for k in head:
        target = target[k]
    if value is _DROP:
        del target[last]
    else:
        target[last] = value
    return doc


def _run_main(env: dict, *args: str) -> tuple[int, str, str]:
    """`nlpsetup ARGS` in this process, through the same main() a user's shell runs (fast enough for
    a property test); any exception but SystemExit is a crash and fails the test with its traceback."""
    import signal

    from click.testing import CliRunner

    from nlpsetup.cli.main import main

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    argv = sys.argv
    try:
        with CliRunner().isolation(env=env) as (out, err, _):
            sys.argv = ["nlpsetup", *args]
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            return code, out.getvalue().decode(), err.getvalue().decode()
    finally:
        sys.argv = argv
        for s, h in handlers.items():
            signal.signal(s, h)


def _assert_clean(cmd, code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2, 3), (cmd, code, out, err)
    assert "Traceback" not in out + err, (cmd, err)
    assert len([ln for ln in err.splitlines() if ln.startswith("nlpsetup: error:")]) <= 1, (cmd, err)


@pytest.fixture(scope="module")
def built(kit, tmp_path_factory):
    """One env (tinytool), its manifest and its lock; the environment of a user of the local index
    (every other variable of pip's or uv's unset)."""
    root = tmp_path_factory.mktemp("fields")
    home = root / "home"
    assert nlp({}, "install", "tinytool", "--name", "e", "--backend", "pip", home=home, kit=kit)[0] == 0
    code, out, _ = nlp({}, "lock", "e", home=home, kit=kit)
    assert code == 0
    (root / "empty-index").mkdir()  # from here on pip finds nothing: add, kernel and upgrade fail fast
    env = {**{k: None for k in os.environ if k.startswith(("PIP_", "UV_"))},
           **installkit.environ(kit, home, JUPYTER_DATA_DIR=str(root / "jupyter"),
                                PIP_INDEX_URL=(root / "empty-index").as_uri())}
    manifest = home / "envs" / "e" / "nlpsetup.json"
    return {"root": root, "env": env, "manifest": manifest, "data": json.loads(manifest.read_text()),
            "lock": json.loads(out)}


_MANIFEST_COMMANDS = [["envs"], ["envs", "--json"], ["envs", "--outdated"], ["verify", "e"], ["doctor", "--quick"],
                      ["lock", "e"], ["export", "e"], ["kernel", "e"], ["upgrade", "e"], ["upgrade", "--all"],
                      ["add", "e", "no-such-package-anywhere"]]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # ~15 s each
@given(st.data())
def test_every_command_reading_a_manifest_survives_any_field_dropped_or_retyped(built, data):
    path = data.draw(st.sampled_from(_key_paths(built["data"])), label="field")
    value = data.draw(st.sampled_from(_RETYPED), label="value")
    built["manifest"].write_text(json.dumps(_mutated(built["data"], path, value)))
    try:
        for cmd in _MANIFEST_COMMANDS:
            _assert_clean(cmd, *_run_main(built["env"], *cmd))
        bundle = built["root"] / "bundle"
        shutil.rmtree(bundle, ignore_errors=True)
        _assert_clean("bundle", *_run_main(built["env"], "bundle", "e", "-o", str(bundle)))
        p = subprocess.run([sys.executable, "-m", "nlpsetup", "run", "e", "--", "python", "-c", "pass"],
                           capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in {**os.environ, **built["env"]}.items() if v is not None})
        _assert_clean("run", p.returncode, p.stdout, p.stderr)  # in a child: run becomes the command (exec)
    finally:
        built["manifest"].write_text(json.dumps(built["data"]))
    figures.add("hostile inputs tried")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_install_from_a_lock_survives_any_field_dropped_or_retyped(built, data):
    path = data.draw(st.sampled_from(_key_paths(built["lock"])), label="field")
    value = data.draw(st.sampled_from(_RETYPED), label="value")
    lock = built["root"] / "lock.json"
    lock.write_text(json.dumps(_mutated(built["lock"], path, value)))
    _assert_clean("install --from-lock", *_run_main(built["env"], "install", "--from-lock", str(lock), "--name", "z",
                                                     "--dry-run", "--json"))
    figures.add("hostile inputs tried")
