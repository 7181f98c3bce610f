"""`nlpsetup doctor`: host checks on simulated hosts, env findings on real envs in every state,
exit codes, --fix and a report with no secret in it."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

import installkit
from nlpsetup.doctor import envs as doctor_envs
from nlpsetup.doctor.host import host_checks
from nlpsetup.facts.gpu import Gpu, GpuFacts
from nlpsetup.facts.host import Host, IndexSettings
from nlpsetup.facts.pythons import PythonInstall

TODAY = dt.date(2026, 11, 24)
VERSIONS = {"pip": "25.3", "virtualenv": "21.0", "uv": "0.13.9"}


def host(**kw) -> Host:
    base = dict(os="linux", arch="x86_64", libc="glibc", libc_version="2.36",
                pythons=(PythonInstall("3.12.1", path="/py/3.12"),), tools=(("cc", "/usr/bin/cc"), ("git", "/usr/bin/git")),
                disk_free_bytes=100 * 2**30, gpu=GpuFacts(driver=None, error="nvidia-smi is not on PATH"))
    base.update(kw)
    return Host(**base)


def by_id(findings, prefix):
    return [f for f in findings if f.id.startswith(prefix)]


def checks(h, probe=lambda url: (True, "")):
    return host_checks(h, biggest_mb=7000, today=TODAY, versions=VERSIONS, probe_index=probe)


def test_a_healthy_cpu_host_has_no_failure():
    found = checks(host())
    assert not [f for f in found if f.status == "failure"]
    assert "CPU builds" in by_id(found, "host.gpu")[0].message


@pytest.mark.parametrize(("h", "prefix", "status", "words"), [
    (host(gpu=GpuFacts(driver="418.67", gpus=(Gpu("Tesla V100", "7.0", 16160),))), "host.gpu.driver", "ok", "10.1"),
    (host(gpu=GpuFacts(driver="390.12", gpus=(Gpu("GTX 970", "5.2", 4096),))), "host.gpu.driver", "warning", "update the driver"),
    (host(gpu=GpuFacts(driver="580.65.06", gpus=(Gpu("GeForce GTX 1080 Ti", "6.1", 11264),))), "host.gpu.0", "warning", "sm_75"),
    (host(gpu=GpuFacts(driver="580.65.06", gpus=(Gpu("NVIDIA H100", "9.0", 81559),))), "host.gpu.0", "ok", "sm_90"),
    (host(gpu=GpuFacts(driver=None, source="nvidia-smi", error="NVIDIA-SMI has failed: driver/library version mismatch")),
     "host.gpu", "warning", "mismatch"),
    (host(tools=(("git", "/usr/bin/git"),)), "host.compiler", "warning", "build-essential"),
    (host(disk_free_bytes=200 * 2**20), "host.disk", "failure", "only 200 MB"),
    (host(disk_free_bytes=3 * 2**30), "host.disk", "warning", "about 7000 MB"),
    (host(pythons=()), "host.python", "failure", "no Python"),
    (host(pythons=(PythonInstall("3.8.18", path="/p"),)), "host.python.3.8.18", "warning", "end of life"),
    (host(libc="musl", libc_version=None), "host.os", "warning", "musl"),
])
def test_simulated_hosts(h, prefix, status, words):
    f = by_id(checks(h), prefix)[0]
    assert f.status == status and words in (f.message + " " + f.fix), f


def test_an_index_that_does_not_answer_is_a_failure_with_the_url_masked():
    h = host(index=IndexSettings(index_url="https://bob:hunter2@mirror.example/simple"))
    f = by_id(checks(h, probe=lambda url: (False, "Connection refused")), "host.index")[0]
    assert f.status == "failure" and "hunter2" not in f.message and "Connection refused" in f.message
    quick = by_id(checks(h, probe=None), "host.index")[0]
    assert quick.status == "ok" and "not probed" in quick.message


# envs -----------------------------------------------------------------------------------


nlp = installkit.nlpsetup


def test_doctor_on_an_empty_home_exits_0(kit, tmp_path):
    code, out, err = nlp(kit, tmp_path / "home", "doctor", "--quick", "--json")
    data = json.loads(out)
    assert code == 0 and data["schema_version"] == 1 and data["summary"]["failure"] == 0
    assert all({"id", "status", "message", "fix"} <= set(c) for c in data["checks"])


@pytest.mark.parametrize("kind", ["fifo", "path not a string"])
def test_a_hostile_kernelspec_neither_hangs_nor_crashes_doctor(kit, tmp_path, kind):
    import os

    spec = tmp_path / "jupyter" / "kernels" / "nlpsetup-x" / "kernel.json"
    spec.parent.mkdir(parents=True)
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("FIFOs are POSIX")
        os.mkfifo(spec)  # reading it blocks until a writer comes: never
    else:
        spec.write_text(json.dumps({"argv": [], "metadata": {"nlpsetup": {"env": "x", "path": 5}}}))
    code, out, err = nlp(kit, tmp_path / "home", "doctor", "--quick", "--json", timeout=60,
                         JUPYTER_DATA_DIR=str(tmp_path / "jupyter"))
    assert code in (0, 1) and "Traceback" not in err and json.loads(out)["checks"]


@pytest.mark.installed(("healthy", "pip"), ("drifted", "pip"), ("gone", "pip"), ("corrupt", "pip"))
def test_doctor_finds_each_kind_of_broken_env_and_fix_repairs_what_is_safe(kit, home, tmp_path):
    envs = home / "envs"
    shutil.rmtree(next((envs / "drifted" / "lib").glob("python*/site-packages/tinytool")))
    shutil.rmtree(next((envs / "drifted" / "lib").glob("python*/site-packages/tinytool-*.dist-info")))
    for p in (envs / "gone" / "bin").glob("python*"):
        p.unlink()  # as if the pyenv version behind it had been removed
    (envs / "corrupt" / "nlpsetup.json").write_text('{"schema_version": 1, "tools": [')
    (envs / "halfbuilt").mkdir()  # a kill right after the env was created, before anything was installed
    (envs / "halfbuilt" / ".nlpsetup-env").write_text('{"created_by": "nlpsetup"}')
    (envs / "halfbuilt" / "partial.txt").write_text("x")
    (envs / "mydata").mkdir()  # the user's own folder: no manifest, no marker
    (envs / "mydata" / "notes.txt").write_text("mine")
    (home / "journal").mkdir(exist_ok=True)
    (home / "journal" / "interrupted.json").write_text(json.dumps(
        {"env": "interrupted", "phase": "building", "had_old": False, "pid": 999999}))
    (envs / "interrupted").mkdir()
    code, out, err = nlp(kit, home, "doctor", "--json")
    assert code == 1 and "Traceback" not in err, err
    checks_ = json.loads(out)["checks"]
    status = {(c["id"], c.get("env")): c["status"] for c in checks_}
    assert status[("env.interpreter", "healthy")] == "ok" and status[("env.smoke", "healthy")] == "ok"
    assert status[("env.drift", "drifted")] == "warning"
    assert status[("env.interpreter", "gone")] == "failure"
    assert status[("env.manifest", "corrupt")] == "failure"
    assert status[("env.half-built", "halfbuilt")] == "failure"
    assert status[("env.foreign", "mydata")] == "warning"
    assert status[("env.interrupted", "interrupted")] == "failure"
    gone = next(c for c in checks_ if c.get("env") == "gone")
    assert "gone" in gone["message"] and gone["fix"] == "rebuild it: nlpsetup reinstall gone"
    code, out, err = nlp(kit, home, "doctor", "--fix", "--quick")
    assert "removed the half-built env" in err and "removed a half-built env left by an interrupted install" in err
    assert not (envs / "halfbuilt").exists() and not (envs / "interrupted").exists()
    assert (envs / "mydata" / "notes.txt").read_text() == "mine", "--fix deletes only what nlpsetup marked"
    assert (envs / "healthy").exists() and (envs / "gone").exists() and (envs / "corrupt").exists(), \
        "--fix never deletes an env that holds a manifest or an interpreter"
    assert nlp(kit, home, "verify", "healthy")[0] == 0
    assert nlp(kit, home, "reinstall", "gone")[0] == 0 and nlp(kit, home, "verify", "gone")[0] == 0  # the hint runs


def test_report_has_host_envs_and_last_failure_but_no_secret(kit, tmp_path):
    home = tmp_path / "home"
    secret_env = {"HF_TOKEN": "hf_SECRETabc", "MY_API_KEY": "k3ySECRET", "DB_PASSWORD": "pwSECRET",
                  "PIP_EXTRA_INDEX_URL": "https://user:idxSECRET@127.0.0.1:9/simple?X-Amz-Signature=sigSECRET"}
    nlp(kit, home, "install", "brokenimport", "--backend", "pip", **secret_env)
    report = tmp_path / "r.md"
    code, out, err = nlp(kit, home, "doctor", "--quick", "--report", str(report), **secret_env)
    text = report.read_text()
    assert "### Host" in text and "### Envs" in text and "### Last failed install" in text
    assert "brokenimport needs libfoo.so.1" in text
    assert "HF_TOKEN=****" in text
    for secret in ("hf_SECRETabc", "k3ySECRET", "pwSECRET", "idxSECRET", "sigSECRET"):
        assert secret not in text and secret not in out and secret not in err


def test_doctor_tool_explains_every_variant(kit, tmp_path):
    code, out, _ = nlp(kit, tmp_path / "h", "doctor", "tensorflow-text", "--json", NLPSETUP_RECIPES_PATH="")
    data = json.loads(out)
    ids = [c["id"] for c in data["checks"]]
    assert ids[0] == "tensorflow-text.choice"
    assert any(i.startswith("tensorflow-text.2.13.") for i in ids)


def test_an_index_that_redirects_has_answered_in_one_round_trip():
    """A redirect is an answer (pypi.org/simple redirects to /simple/): following it would cost a
    second TLS round trip in every doctor run, and here would hit a closed port."""
    import http.server
    import threading

    from nlpsetup.execution.execute import reachable

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/closed/")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert reachable(f"http://127.0.0.1:{server.server_port}/simple", timeout=5) == (True, "")
        assert reachable("http://127.0.0.1:9/closed/", timeout=5)[0] is False
    finally:
        server.shutdown()


@pytest.mark.parametrize("checker", ["uv", "pip"])
@pytest.mark.installed(("tinytool", "pip"))
def test_doctor_names_a_broken_requirement_with_uv_or_pip(kit, home, tmp_path, monkeypatch, checker):
    env = home / "envs" / "tinytool"
    (site,) = env.glob("lib/python*/site-packages")
    info = site / "needy-1.0.dist-info"  # installed behind nlpsetup's back, its dependency missing
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: needy\nVersion: 1.0\nRequires-Dist: missingdep>=2\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    (info / "RECORD").write_text("needy-1.0.dist-info/METADATA,,\nneedy-1.0.dist-info/RECORD,,\n")
    if checker == "pip":  # no uv anywhere: the env's own pip checks
        monkeypatch.setattr("nlpsetup.resolve.backends.find_uv", lambda env=None: None)
    found = doctor_envs._pip_check(env, str(env / "bin" / "python"), "pip")
    assert found.status == "warning" and "needy" in found.message and "missingdep" in found.message, found
    assert "Using Python" not in found.message


# Runs nlpsetup with an audit hook that appends the argv of each process it starts to $SPAWN_LOG.
_SPAWN_LOGGER = r"""
import json, os, sys
def hook(event, args):
    if event == "subprocess.Popen":
        with open(os.environ["SPAWN_LOG"], "a") as out:
            out.write(json.dumps([str(a) for a in args[1]]) + "\n")
sys.addaudithook(hook)
sys.argv = ["nlpsetup", *sys.argv[1:]]
from nlpsetup.__main__ import main
main()
"""


@pytest.mark.installed(("healthy", "pip"), ("stale", "pip"))
def test_doctor_deep_starts_each_env_interpreter_once_and_still_names_one_that_no_longer_runs(kit, home, tmp_path):
    """The smoke checks start the env's interpreter anyway: a start of its own (`-c pass`) before
    them cost every env a Python start-up, one after another (issue 21, item 14)."""
    import subprocess
    import sys

    log = tmp_path / "spawns.jsonl"
    stale_python = home / "envs" / "stale" / "bin" / "python"
    stale_python.unlink()  # still there, but fails to start (as when its base Python was replaced)
    stale_python.write_text("#!/bin/sh\nexit 1\n")
    stale_python.chmod(0o755)
    p = subprocess.run([sys.executable, "-c", _SPAWN_LOGGER, "doctor", "--deep", "--json"], capture_output=True,
                       text=True, env=installkit.environ(kit, home, SPAWN_LOG=str(log)), timeout=300)
    status = {(c["id"], c.get("env")): c["status"] for c in json.loads(p.stdout)["checks"]}
    assert status[("env.smoke", "healthy")] == "ok" and status[("env.interpreter", "stale")] == "failure", p.stdout
    starts = [json.loads(line) for line in log.read_text().splitlines()]
    healthy_python = str(home / "envs" / "healthy" / "bin" / "python")
    assert sum(argv[0] == healthy_python for argv in starts) == 1, starts
