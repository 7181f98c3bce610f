"""Resolution as tables over simulated hosts: which variant, interpreter and build each host gets,
and the reasons a refusal gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nlpsetup.base import paths
from nlpsetup.envs.names import check_env_name
from nlpsetup.facts.gpu import Gpu, GpuFacts
from nlpsetup.facts.host import Host
from nlpsetup.facts.pythons import PythonInstall, PythonRequest
from nlpsetup.recipes import load as recipes
from nlpsetup.resolve import model as resolve
from nlpsetup.resolve import resolve as resolver

BOOK = recipes.load_book([paths.builtin_recipes_dir()])
ENVS = Path("/envs")
TODAY = dt.date(2026, 11, 24)


def py(*versions: str) -> tuple[PythonInstall, ...]:
    return tuple(PythonInstall(v, path=f"/opt/py{v}/bin/python", source="pyenv") for v in versions)


DEFAULT_PYTHONS = py("3.13.0", "3.11.7", "3.8.18")


def host(os="linux", arch="x86_64", pythons=DEFAULT_PYTHONS, driver=None, gpus=(), **kw):
    libc = ("glibc", kw.pop("glibc", "2.36")) if os == "linux" else (None, None)
    return Host(os=os, arch=arch, libc=libc[0], libc_version=libc[1], pythons=pythons,
                gpu=GpuFacts(driver=driver, gpus=tuple(gpus), error=None if driver else "no driver"), **kw)


def request(tool: str, **kw) -> resolve.Request:
    if isinstance(kw.get("python"), str):
        kw["python"] = PythonRequest(raw=kw["python"], version=kw["python"])
    return resolve.Request(tool=resolver.parse_tool(tool), today=TODAY, **kw)


def run(tool: str, h: Host, **kw):
    req = request(tool, **kw)
    return resolver.resolve(BOOK.find(req.tool.name), h, req, envs_root=ENVS)


# (tool, host, request options) -> (variant, python version) ---------------------------------
PLANS = [
    ("spacy", host(), {}, "3.8", "3.13.0"),
    ("spacy", host(), {"python": "3.8"}, "3.7", "3.8.18"),
    ("spacy", host(pythons=py("3.9.18")), {}, "3.7", "3.9.18"),
    ("spacy", host(pythons=py("3.6.15")), {}, "3.6", "3.6.15"),
    ("spacy", host(os="windows", pythons=(), simulated=True), {}, "3.8", "3.14"),
    ("spacy", host(os="macos", arch="arm64", pythons=py("3.12.1")), {}, "3.8", "3.12.1"),
    ("adaptnlp", host(), {}, "0.3.7", "3.8.18"),
    ("adaptnlp[dev]", host(), {}, "0.3.7", "3.8.18"),
    ("tensorflow-text", host(), {}, "2.21", "3.13.0"),
    ("tensorflow-text", host(pythons=py("3.9.18")), {}, "2.20", "3.9.18"),
    ("tensorflow-text", host(pythons=py("3.8.18")), {}, "2.13", "3.8.18"),
    ("tensorflow-text", host(os="macos", arch="arm64", pythons=py("3.12.1")), {}, "2.21", "3.12.1"),
    ("tf-text", host(), {}, "2.21", "3.13.0"),
    ("autogluon", host(), {}, "1.6.3", "3.13.0"),
    ("autogluon", host(), {"python": "3.8"}, "0.3.1", "3.8.18"),
    ("autogluon==0.3.1", host(), {}, "0.3.1", "3.8.18"),
    ("autogluon", host(), {"variant": "tabular-1.6.3"}, "tabular-1.6.3", "3.13.0"),
    ("gluonnlp", host(), {}, "0.10.0", "3.11.7"),
    # wheels that exist: tensorflow-text 2.20+ and mxnet 1.9.1 for Linux aarch64, tf-text 2.16 for Intel Macs
    ("tensorflow-text", host(arch="arm64"), {}, "2.21", "3.13.0"),
    ("tensorflow-text", host(os="macos", arch="x86_64", pythons=py("3.11.7")), {}, "2.16", "3.11.7"),
    ("gluonnlp", host(arch="arm64"), {}, "0.10.0", "3.11.7"),
    # a target's own Python range: datarobot on Windows arm64 needs cp311+ numpy/pandas and cp312+ PyYAML wheels
    ("datarobot", host(os="windows", arch="arm64", pythons=py("3.11.7", "3.12.1")), {}, "3", "3.12.1"),
]


@pytest.mark.parametrize(("tool", "h", "opts", "variant", "version"), PLANS)
def test_each_host_gets_the_expected_variant_and_interpreter(tool, h, opts, variant, version):
    plan = run(tool, h, **opts)
    assert isinstance(plan, resolve.Plan), plan
    assert (plan.variant.id, plan.python.version) == (variant, version)


# (tool, host, request options) -> words every refusal must contain ---------------------------
REFUSALS = [
    ("adaptnlp", host(), {"python": "3.13"}, ["Python 3.13", "needs Python 3.8", "torch<=1.10",
                                               "--python 3.8"]),
    ("adaptnlp", host(pythons=py("3.13.0", "3.12.1")), {}, ["needs Python 3.8", "pyenv install 3.8"]),
    ("tensorflow-text", host(os="windows", pythons=(), simulated=True), {}, ["windows", "WSL2"]),
    ("gluonnlp", host(os="macos", arch="arm64", pythons=py("3.11.7")), {}, ["macos-x86_64 only", "mxnet 1.9.1 ships"]),
    ("datarobot", host(os="windows", arch="arm64", pythons=py("3.10.13")), {},
     ["on windows-arm64: numpy and pandas have Windows arm64 wheels from cp311", "PyYAML from cp312", "Python >=3.12"]),
    ("autonlp", host(arch="arm64", pythons=py("3.12.1")), {}, ["bitsandbytes==0.45.0", "no aarch64 wheel"]),
    ("tensorflow-text", host(os="macos", arch="x86_64", pythons=py("3.12.1")), {}, ["macos-arm64"]),
    ("gluonnlp", host(os="windows", pythons=(), simulated=True), {}, ["linux, macos only, not windows"]),
    ("gluonnlp", host(pythons=py("3.13.0", "3.12.1")), {}, ["numpy<1.24", "3.11"]),
    ("autogluon", host(os="windows", pythons=py("3.8.18")), {"python": "3.8"}, ["Python 3.8", "not windows"]),
    ("spacy==0.0.1", host(), {}, ["no variant of spacy installs spacy==0.0.1"]),
    ("spacy", host(pythons=py("2.7.18")), {"python": "2.7"}, ["Python 2.7"]),
]


@pytest.mark.parametrize(("tool", "h", "opts", "words"), REFUSALS)
def test_refusals_name_the_reason_and_the_way_out(tool, h, opts, words):
    from nlpsetup.ui import render

    result = run(tool, h, **opts)
    assert isinstance(result, resolve.Refusal), result
    text = render.refusal_text(result)
    for w in words:
        assert w in text, f"{w!r} not in:\n{text}"
    data = result.to_dict()
    assert data["refused"] is True and data["rejected"] and all(r["reasons"] for r in data["rejected"])


def test_python_2_7_alone_is_refused_because_it_cannot_host_an_env():
    result = run("spacy", host(pythons=py("2.7.18")))
    assert isinstance(result, resolve.Refusal)
    assert "no Python" in result.rejected[0].reasons[0].message or "2.7" in str(result.to_dict())


# compute backends ---------------------------------------------------------------------------
H100 = Gpu("NVIDIA H100 80GB HBM3", "9.0", 81559)
GTX1080 = Gpu("NVIDIA GeForce GTX 1080 Ti", "6.1", 11264)
V100 = Gpu("Tesla V100-PCIE-16GB", "7.0", 16160)
A10 = Gpu("NVIDIA A10", "8.6", 23028)

COMPUTE = [
    # (tool, host, expected backend)
    ("adaptnlp", host(), "cpu"),
    ("adaptnlp", host(driver="535.161.08", gpus=[A10]), "cu113"),
    ("adaptnlp", host(driver="535.161.08", gpus=[H100]), "cpu"),  # no torch<=1.10 build has sm_90 kernels
    ("adaptnlp", host(driver="418.67", gpus=[V100]), "cu101"),  # torch 1.7 shipped cu101
    ("adaptnlp", host(driver="440.100", gpus=[V100]), "cu102"),
    ("autogluon", host(driver="580.65.06", gpus=[H100]), "cu132"),
    # a 535 driver runs CUDA 12.x: torch 2.13's cu126 (the newest torch it can have), not 2.11's cu128
    ("autogluon", host(driver="535.161.08", gpus=[H100]), "cu126"),
    ("autogluon", host(driver="580.65.06", gpus=[GTX1080]), "cu126"),
    ("autogluon", host(driver="470.63.01", gpus=[GTX1080]), "cpu"),
    ("gluonnlp", host(driver="535.161.08", gpus=[A10]), "cu112"),
    ("gluonnlp", host(driver="440.100", gpus=[V100]), "cu102"),
    ("gluonnlp", host(), "cpu"),
]


@pytest.mark.parametrize(("tool", "h", "backend"), COMPUTE)
def test_gpu_hosts_get_the_newest_build_driver_and_gpu_can_run(tool, h, backend):
    plan = run(tool, h)
    assert isinstance(plan, resolve.Plan), plan
    assert plan.compute is not None and plan.compute.backend == backend, plan.compute


def test_torch_comes_from_the_chosen_pytorch_index_and_stays_pinned_for_the_tool_step():
    plan = run("adaptnlp", host(driver="535.161.08", gpus=[A10]))
    framework = next(s for s in plan.steps if s.name == "framework")
    assert framework.argv[-2:] == ("--index-url", "https://download.pytorch.org/whl/cu113")
    assert any(a.startswith("torch") for a in framework.argv)
    assert "torch<=1.10.0,>=1.7" in plan.constraints


def test_torch_mirror_replaces_the_pytorch_index():
    plan = run("adaptnlp", host(), torch_mirror="https://mirror.example/torch/")
    framework = next(s for s in plan.steps if s.name == "framework")
    assert framework.argv[-1] == "https://mirror.example/torch/cpu"


def test_cuda_swap_replaces_the_cpu_package():
    plan = run("gluonnlp", host(driver="535.161.08", gpus=[A10]))
    install = next(s for s in plan.steps if s.name == "install")
    assert "mxnet-cu112==1.9.1" in install.argv and "mxnet==1.9.1" not in install.argv
    cpu = next(s for s in run("gluonnlp", host()).steps if s.name == "install")
    assert "mxnet==1.9.1" in cpu.argv


def test_explicit_compute_request_outside_the_builds_is_refused():
    result = run("adaptnlp", host(), compute="cu130")
    assert isinstance(result, resolve.Refusal)
    assert "cu130" in result.rejected[0].reasons[0].message


def test_compute_cpu_is_honoured_on_a_gpu_host():
    plan = run("autogluon", host(driver="580.65.06", gpus=[H100]), compute="cpu")
    assert plan.compute.backend == "cpu"


# plan shape ---------------------------------------------------------------------------------


def test_old_pythons_use_their_own_venv_and_a_capped_pip():
    plan = run("adaptnlp", host())
    create, pre = plan.steps[0], plan.steps[1]
    assert create.argv == ("/opt/py3.8.18/bin/python", "-m", "venv", str(ENVS / "adaptnlp"))
    assert "pip==25.0.1" in pre.argv
    assert any("25.0.1" in w for w in plan.warnings)
    assert any("end of life" in w for w in plan.warnings)


@pytest.mark.parametrize(("version", "cap"), [("3.6.15", "pip==21.3.1"), ("3.7.16", "pip==24.0")])
def test_pip_cap_per_old_python(version, cap):
    plan = run("spacy", host(pythons=py(version)))
    assert cap in plan.steps[1].argv


def test_new_pythons_use_virtualenv_and_prefer_binary_wheels():
    plan = run("spacy", host())
    assert plan.steps[0].method == "virtualenv"
    assert plan.steps[0].argv[1:3] == ("-m", "virtualenv")
    install = plan.steps[-1]
    assert "spacy<3.9,>=3.8" in install.argv
    assert install.argv[:4] == (str(ENVS / "spacy" / "bin/python"), "-m", "pip", "install")
    assert "--prefer-binary" in install.argv


def test_a_step_names_its_installer_its_arguments_and_its_interpreter():
    env_python = str(ENVS / "spacy" / "bin/python")
    create, *_, install = run("spacy", host()).steps
    assert create.interpreter == "/opt/py3.13.0/bin/python" and create.installer == ()
    assert install.installer == (env_python, "-m", "pip", "install")
    assert install.installer + install.args == install.argv and install.interpreter == env_python
    venv = run("adaptnlp", host()).steps[0]
    assert venv.method == "venv" and venv.interpreter == "/opt/py3.8.18/bin/python"
    cutoff_steps = run("adaptnlp", host()).steps  # Python 3.8 under its as_of: uv resolves, pip installs
    uv = next(s for s in cutoff_steps if s.name == "resolve")
    assert uv.installer == ("uv", "pip", "compile") and uv.interpreter == str(ENVS / "adaptnlp" / "bin/python")
    fetch = resolve.Step("fetch-python", ("uv", "python", "install", "3.8"), "")
    assert fetch.installer == () and fetch.args == fetch.argv and fetch.interpreter is None
    seed = resolve.Step("seed", ("uv", "pip", "install", "--python", env_python, "pip.whl"), "")
    assert seed.args == ("--python", env_python, "pip.whl") and seed.interpreter == env_python
    assert resolve.Step("x", (), "").installer == () and resolve.Step("x", (), "").interpreter is None


def test_companion_follows_the_framework_minor():
    plan = run("tensorflow-text", host(pythons=py("3.8.18")))
    install = plan.steps[-1]
    assert "tensorflow-text<2.14,>=2.13" in install.argv
    assert "tensorflow<2.14,>=2.13" in install.argv
    assert "--only-binary=tensorflow-text,tensorflow" in install.argv


def test_requested_extras_and_specifier_go_onto_the_main_package():
    plan = run("adaptnlp[dev]>=0.3", host())
    # on Python 3.8 under its as_of, uv resolves the requirements and pip installs that exact list
    assert "adaptnlp[dev]==0.3.7,>=0.3" in (*plan.steps[-1].argv, *plan.requirements)


def test_simulated_host_gives_a_version_not_a_path():
    plan = run("spacy", host(os="windows", pythons=(), simulated=True))
    assert plan.python.path is None and plan.simulated
    assert plan.to_dict()["python"]["simulated"] is True
    assert plan.env_python.endswith("Scripts/python.exe")


def test_windows_host_is_refused_a_linux_only_variant_with_the_platform_named():
    result = run("autogluon", host(os="windows", pythons=(), simulated=True), variant="0.3.1")
    assert isinstance(result, resolve.Refusal)
    assert result.rejected[0].reasons[0].message == "supports linux, macos only, not windows"


def test_fetch_python_plans_a_uv_install_when_uv_is_present():
    h = host(pythons=py("3.13.0"), tools=(("uv", "/usr/bin/uv"),))
    plan = run("adaptnlp", h, fetch_python=True)
    assert plan.steps[0].argv == ("uv", "python", "install", "3.8")
    refusal = run("adaptnlp", host(pythons=py("3.13.0")), fetch_python=True)
    assert isinstance(refusal, resolve.Refusal)  # no uv: nothing can fetch it


def test_unknown_variant_is_a_usage_error():
    from nlpsetup.base.errors import NlpsetupError

    with pytest.raises(NlpsetupError, match="no variant 'nope'"):
        run("spacy", host(), variant="nope")


def test_glibc_floor_rejects_old_glibc_and_names_it(tmp_path):
    text = (Path(paths.builtin_recipes_dir()) / "spacy.toml").read_text()
    text = text.replace('id = "3.8"\n', 'id = "3.8"\nglibc = "2.38"\n', 1)
    r = recipes.parse(text, "spacy.toml", stem="spacy")
    req = request("spacy")
    plan = resolver.resolve(r, host(glibc="2.36", pythons=py("3.13.0", "3.9.18")), req, envs_root=ENVS)
    assert plan.variant.id == "3.7"
    assert "glibc >= 2.38" in plan.skipped[0].reasons[0].message
    assert "2.36" in plan.skipped[0].reasons[0].message
    ok = resolver.resolve(r, host(glibc="2.39"), req, envs_root=ENVS)
    assert ok.variant.id == "3.8"


# pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(("framework", "companion"), [
    ("==2.15.*", "==2.15.*"),
    ("==2.15.1", "==2.15.*"),
    (">=2.12,<2.16", "<2.16,>=2.12"),
    (">=2.12.1,<=2.15.3", "<2.16,>=2.12"),
    ("~=2.13.0", "==2.13.*"),
    (">=2.21,<2.22", "<2.22,>=2.21"),
])
def test_companion_specifier(framework, companion):
    assert resolver.companion_specifier(framework) == companion


@pytest.mark.parametrize("name", ["ok", "my-env_1.2", "A" * 64])
def test_safe_env_names_pass(name):
    assert check_env_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b", "a\\b", "../x", "con", "NUL", "com1.txt",
                                  "a\nb", "x" * 65, "é", "a b"])
def test_hostile_env_names_are_refused(name):
    from nlpsetup.base.errors import NlpsetupError

    with pytest.raises(NlpsetupError, match="invalid env name"):
        check_env_name(name)


@pytest.mark.parametrize("text", ["", "-e .", "--index-url=http://x", "spacy @ https://x/y.whl", "spacy; os_name=='nt'",
                                  "spa cy", "spacy[", "spacy>=>1"])
def test_bad_tool_specifiers_are_usage_errors(text):
    from nlpsetup.base.errors import NlpsetupError

    with pytest.raises(NlpsetupError):
        resolver.parse_tool(text)


def test_a_plan_for_another_machine_names_the_compiler_it_needs():
    """gluonnlp 0.10.0 is an sdist with a Cython extension: a plan for a machine we cannot look at
    must still say that it compiles, or it claims a binary install that does not exist."""
    plan = run("gluonnlp", host(os="linux", pythons=(), simulated=True))
    needs = [w for w in plan.warnings if w.startswith("needs cc")]
    assert needs and "gluonnlp 0.10.0 is an sdist" in needs[0], plan.warnings
