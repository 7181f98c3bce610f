"""`nlpsetup image` for real: buildah builds the image of a small recipe from the local offline
index on a Debian base made offline (tests/containerbase.py), the smoke checks run inside it, it is
pushed to a registry started on 127.0.0.1 (Debian's docker-registry) and pulled back, and the
pulled image runs the tool. One image build, so CI can afford it where buildah is installed; skipped
with the reason where buildah, debootstrap or docker-registry is missing. The failing image (a
second build) is in the slow set only.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import containerbase

pytestmark = pytest.mark.slow


def _skip_reason() -> str | None:
    return containerbase.missing() or (None if shutil.which("docker-registry") else
                                       "docker-registry is not installed (apt-get install docker-registry)")


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry on a free port of 127.0.0.1, plain HTTP, storage in tmp_path."""
    if why := _skip_reason():
        pytest.skip(why)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    p = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    try:
        while True:  # poll until it answers (or has died); no fixed wait
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert p.poll() is None, "docker-registry exited at start"
            assert time.monotonic() < deadline, "docker-registry did not answer within 120 s"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        p.terminate()
        p.wait(timeout=30)


def _buildah(*args, check=True):
    return subprocess.run(["buildah", *args], env=containerbase.engine_env(), capture_output=True, text=True,
                          check=check)


@pytest.mark.ci  # the one image CI builds
def test_image_is_built_proven_pushed_pulled_back_and_runs(cli, registry, tmp_path):
    base = containerbase.ensure_base()
    tag = f"{registry}/nlpsetup-test/nlpdemo:1"
    job = tmp_path / "job.yaml"
    try:
        code, stdout, err = cli("image", "nlpdemo", "--engine", "buildah", "--base", base, "--python", "3.11",
                                "-t", tag, "--push", "--k8s-job", str(job), "--json",
                                env=containerbase.ENGINE_ENV, timeout=1800)
        assert code == 0, stdout + err
        doc = json.loads(stdout)
        assert doc["verified"] and doc["pushed"] and doc["tag"] == tag
        assert [c.split(" (")[0] for c in doc["checks"]] == [
            "nlpsetup-check: PASS import nlpdemo, torch",
            "nlpsetup-check: PASS code: import nlpdemo, torch; assert nlpdemo.tokens('a b') == ['a',",
            "nlpsetup-check: PASS nlpdemo --help"]
        assert doc["image_size_bytes"] > doc["env_size_bytes"] > 0
        # Pulled back from the registry, the image is the verified one and runs the tool from PATH.
        _buildah("rmi", tag)
        _buildah("pull", "--tls-verify=false", tag)
        labels = json.loads(_buildah("inspect", "--type", "image", tag).stdout)["OCIv1"]["config"]["Labels"]
        assert labels["io.nlpsetup.tool"] == "nlpdemo" and labels["io.nlpsetup.python"] == "3.11"
        assert labels["io.nlpsetup.lock-digest"].startswith("sha256:")
        container = _buildah("from", "--pull-never", tag).stdout.strip()
        try:
            ran = _buildah("run", container, "--", "nlpdemo", "--help", check=False)
            assert ran.returncode == 0, ran.stdout + ran.stderr
            # The Job's command is the one nlpsetup proved the image with.
            command = json.loads(job.read_text())["spec"]["template"]["spec"]["containers"][0]["command"]
            checked = _buildah("run", container, "--", *command, check=False)
            assert checked.returncode == 0 and "nlpsetup-check: PASS nlpdemo --help" in checked.stdout
            env = _buildah("run", container, "--", "ls", "/opt/nlpsetup/envs/nlpdemo").stdout.split()
            assert {"nlpsetup.json", "nlpsetup.lock.json", "bin"} <= set(env)
        finally:
            _buildah("rm", container, check=False)
    finally:
        _buildah("rmi", tag, check=False)
    assert not list(Path(tmp_path / "home" / "cache").glob("image-*"))  # the build context is removed


def test_an_image_whose_check_fails_is_removed_and_the_check_named(cli, tmp_path):
    if why := containerbase.missing():
        pytest.skip(why)
    base = containerbase.ensure_base()
    before = set(_buildah("images", "--quiet", "--no-trunc").stdout.split())
    code, _, err = cli("image", "brokenimport", "--engine", "buildah", "--base", base, "--python", "3.11",
                       "-t", "localhost/nlpsetup-test/brokenimport:1", env=containerbase.ENGINE_ENV, timeout=1800)
    assert code == 1
    assert "the image failed its smoke check 'import brokenimport'; it was removed, untagged" in err
    assert "brokenimport needs libfoo.so.1" in err  # the reason, from inside the image
    assert set(_buildah("images", "--quiet", "--no-trunc").stdout.split()) == before
    assert _buildah("inspect", "--type", "image", "localhost/nlpsetup-test/brokenimport:1", check=False).returncode != 0
    assert not _buildah("containers", "--quiet").stdout.strip()  # the check's working container is gone too


def test_a_base_without_the_python_asked_for_says_so(cli):
    if why := containerbase.missing():
        pytest.skip(why)
    base = containerbase.ensure_base()  # Debian bookworm: python3.11 only
    code, _, err = cli("image", "tinytool", "--engine", "buildah", "--base", base, "--python", "3.12",
                       env=containerbase.ENGINE_ENV, timeout=900)
    assert code == 3
    assert f"the base image {base} has no python3.12" in err and "--python with the Python the base has" in err
