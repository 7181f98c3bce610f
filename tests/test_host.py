"""Host facts: interpreter discovery against the real pyenv Pythons here, JSON round trips,
simulated hosts, and pip's index settings with credentials masked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.facts import host as host_mod
from nlpsetup.facts import pythons

PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"

PYENV = sorted(PYENV_VERSIONS.glob("*/bin/python")) if PYENV_VERSIONS.is_dir() else []
needs_pyenv = pytest.mark.skipif(not PYENV, reason="no pyenv interpreters on this machine")


@needs_pyenv
def test_discovery_finds_every_pyenv_interpreter_with_its_real_version(tmp_path):
    found = pythons.discover(tmp_path)
    by_path = {os.path.realpath(p.path): p for p in found}
    for exe in PYENV:
        expected = exe.parent.parent.name  # pyenv names the folder after the version
        if not expected[0].isdigit():
            continue
        match = [p for real, p in by_path.items() if real.startswith(str(exe.parent.parent.resolve()))]
        assert match, f"{exe} not discovered"
        assert match[0].version == expected and match[0].source == "pyenv"
    versions = [p.version for p in found]
    assert versions == sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")), reverse=True)


@needs_pyenv
def test_second_discovery_uses_the_cache_and_runs_nothing(tmp_path, monkeypatch):
    first = pythons.discover(tmp_path)

    def boom(*a, **k):
        raise AssertionError("probed again despite an unchanged interpreter")

    monkeypatch.setattr(pythons, "_probe", boom)
    assert pythons.discover(tmp_path) == first


def test_a_changed_interpreter_is_probed_again(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    calls = []
    monkeypatch.setattr(pythons, "_probe", lambda p, c: calls.append(p) or ("3.99.0", "CPython", p))
    env = {"PATH": str(fake.parent), "PYENV_ROOT": str(tmp_path / "none"), "HOME": str(tmp_path)}
    monkeypatch.setenv("HOME", str(tmp_path))
    pythons.discover(tmp_path / "cache", env)
    pythons.discover(tmp_path / "cache", env)
    assert len(calls) == 1
    fake.write_text("#!/bin/sh\n# changed\n")
    pythons.discover(tmp_path / "cache", env)
    assert len(calls) == 2


@needs_pyenv
def test_python_2_7_is_found_even_though_python_discovery_cannot_query_it(tmp_path):
    if not (PYENV_VERSIONS / "2.7.18").exists():
        pytest.skip("no pyenv 2.7 here")
    found = pythons.discover(tmp_path)
    assert any(p.version == "2.7.18" for p in found)


@pytest.mark.parametrize(("text", "version", "is_path"), [
    ("3.8", "3.8", False), ("3.12.1", "3.12.1", False), ("python3.11", "3.11", False),
    ("cp39", "3.9", False), ("py312", "3.12", False), (sys.executable, None, True),
])
def test_python_requests(text, version, is_path):
    req = pythons.parse_request(text)
    assert (req.version, bool(req.path)) == (version, is_path)


def test_a_python_request_that_is_neither_is_a_usage_error():
    with pytest.raises(NlpsetupError, match="neither a Python request"):
        pythons.parse_request("latest")


def test_probe_path_rejects_a_file_that_is_not_python(tmp_path):
    fake = tmp_path / "notpython"
    fake.write_text("#!/bin/sh\necho hi\n")
    fake.chmod(0o755)
    with pytest.raises(NlpsetupError, match="not a Python interpreter"):
        pythons.probe_path(str(fake), tmp_path)


def test_probe_path_reads_the_running_interpreter(tmp_path):
    p = pythons.probe_path(sys.executable, tmp_path)
    assert p.version == ".".join(map(str, sys.version_info[:3])) and p.path == sys.executable


# host values --------------------------------------------------------------------------------


def test_detected_host_round_trips_through_json(tmp_path):
    h = host_mod.detect(tmp_path, tmp_path / "cache")
    data = json.loads(json.dumps(h.to_dict()))
    back = host_mod.Host.from_dict(data)
    assert (back.os, back.arch, back.libc_version) == (h.os, h.arch, h.libc_version)
    assert [p.version for p in back.pythons] == [p.version for p in h.pythons]
    assert back.gpu == h.gpu


def test_this_linux_host_reports_glibc(tmp_path):
    if sys.platform != "linux":
        pytest.skip("Linux only")
    h = host_mod.detect(tmp_path, None)
    assert h.libc in ("glibc", "musl")
    if h.libc == "glibc":
        assert os.confstr("CS_GNU_LIBC_VERSION").endswith(h.libc_version)


def test_host_file_with_bare_versions_is_a_simulated_host():
    h = host_mod.Host.from_dict({"os": "windows", "arch": "x86_64", "pythons": ["3.11.9"]})
    assert h.simulated and h.pythons[0].path is None and h.pythons[0].version == "3.11.9"


@pytest.mark.parametrize(("data", "words"), [
    ([], "expected a JSON object"),
    ({"os": "beos"}, "'os' must be one of"),
    ({"os": "linux", "arch": "sparc"}, "'arch' must be one of"),
    ({"os": "linux", "pythons": "3.8"}, "pythons: must be a list"),
    ({"os": "linux", "tools": ["git"]}, "tools: must be a table"),
])
def test_bad_host_files_are_clear_errors(data, words):
    with pytest.raises(NlpsetupError, match=words):
        host_mod.Host.from_dict(data)


def test_simulating_another_platform_drops_paths_and_gpu():
    real = host_mod.Host(os="linux", arch="x86_64", libc="glibc", libc_version="2.36",
                         pythons=(pythons.PythonInstall("3.12.1", path="/usr/bin/python3"),))
    sim = host_mod.simulate(real, os_name="macos", arch="arm64")
    assert sim.simulated and sim.pythons == () and sim.apple_silicon and sim.libc is None


def test_a_named_platform_is_its_default_runner_machine_even_on_a_host_of_that_os():
    real = host_mod.Host(os="linux", arch="x86_64", libc="glibc", libc_version="2.36")
    linux = host_mod.simulate(real, os_name="linux")
    assert (linux.arch, linux.libc_version) == ("x86_64", host_mod.SIMULATED_GLIBC)
    assert host_mod.simulate(real, os_name="macos").arch == "arm64"
    assert host_mod.simulate(real, os_name="macos", arch="x86_64").arch == "x86_64"
    assert host_mod.simulate(real, os_name="linux", glibc="2.28").libc_version == "2.28"
    # --arch alone changes only this host's architecture, and names it the way uname does too
    arm = host_mod.simulate(real, arch="aarch64")
    assert (arm.os, arm.arch, arm.libc_version) == ("linux", "arm64", "2.36")


def test_simulated_defaults_are_the_ones_matrix_uses():
    from nlpsetup.authoring import matrix
    from nlpsetup.base import paths
    from nlpsetup.recipes import load as recipes

    for os_name in host_mod.OSES:
        planned = host_mod.simulate(host_mod.Host(os="linux", arch="arm64"), os_name=os_name)
        m = matrix.build([recipes.load_file(paths.builtin_recipes_dir() / "spacy.toml")], ["3.12"], [os_name])
        assert m.hosts == (host_mod.assumption(planned),)


def test_pip_index_from_config_and_env_with_credentials_masked(tmp_path):
    cfg = tmp_path / "pip.conf"
    cfg.write_text("[global]\nindex-url = https://alice:s3cr3t@pypi.example/simple\n"
                   "extra-index-url = https://tok123@extra.example/simple\n")
    env = {"PIP_CONFIG_FILE": str(cfg), "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none"),
           "XDG_CONFIG_HOME": str(tmp_path / "none")}
    s = host_mod.pip_index_settings(env)
    assert s.index_url == "https://alice:s3cr3t@pypi.example/simple"  # the raw value, for uv
    shown = json.dumps(s.to_dict())
    assert "s3cr3t" not in shown and "tok123" not in shown and "pypi.example" in shown
    env["PIP_INDEX_URL"] = "https://other.example/simple?token=abc"
    s = host_mod.pip_index_settings(env)
    assert s.index_url.endswith("token=abc") and "abc" not in json.dumps(s.to_dict())


def test_pip_config_file_devnull_means_no_config(tmp_path):
    s = host_mod.pip_index_settings({"PIP_CONFIG_FILE": os.devnull, "HOME": str(tmp_path)})
    assert s.index_url is None and s.extra_index_urls == ()


def test_redaction_covers_userinfo_and_query_tokens():
    from nlpsetup.base.redact import mask_env, mask_text

    text = ("pip: https://u:pw@h/simple https://tok@h/x?X-Amz-Signature=abc&X-Amz-Credential=def"
            "&X-Amz-Security-Token=ghi&sig=jkl&token=mno")
    masked = mask_text(text)
    for secret in ("pw", "tok@", "abc", "def", "ghi", "jkl", "mno"):
        assert secret not in masked
    assert mask_env({"HF_TOKEN": "x1", "PATH": "/bin", "URL": "https://a:b@c"}) == \
        {"HF_TOKEN": "****", "PATH": "/bin", "URL": "https://a:****@c"}


def test_unwritable_or_file_home_is_a_clear_error(tmp_path):
    from nlpsetup.base import paths

    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(NlpsetupError, match="is a file"):
        paths.checked_home({"NLPSETUP_HOME": str(f)})
    assert paths.checked_home({"NLPSETUP_HOME": str(tmp_path / "new")}) == Path(tmp_path / "new")
