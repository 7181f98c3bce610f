"""nlpsetup.facts.gpu and nlpsetup.resolve.compute: parsing recorded nvidia-smi output, detection through fake
seams, build choice.

The fixtures in tests/data/nvidia-smi are real recorded outputs; README.md there names the source of
each. Nothing here runs nvidia-smi or touches the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.version import Version

from nlpsetup.facts import gpu
from nlpsetup.facts.gpu import Gpu, GpuFacts
from nlpsetup.resolve import compute
from nlpsetup.resolve.compute import InvalidComputeRequest

FIXTURES = Path(__file__).parent / "data" / "nvidia-smi"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# parse_smi_table

H100 = "NVIDIA H100 80GB HBM3"


@pytest.mark.parametrize(
    ("name", "driver", "cuda", "gpus"),
    [
        ("418.67-tesla-v100-pcie.txt", "418.67", "10.1", [("Tesla V100-PCIE...", 16130)]),
        ("440.100-rtx2070-laptop.txt", "440.100", "10.2", [("GeForce RTX 207...", 7973)]),
        ("460.39-rtx2070-laptop.txt", "460.39", "11.2", [("GeForce RTX 2070", 7973)]),
        ("470.63.01-geforce-laptop-16gb.txt", "470.63.01", "11.4", [("NVIDIA GeForce ...", 16116)]),
        ("535.161.08-h100x8.txt", "535.161.08", "12.2", [(H100, 81559)] * 8),
        ("550.90.07-h100x8-no-processes-section.txt", "550.90.07", "12.4", [(H100, 81559)] * 8),
        ("550.127.05-a10.txt", "550.127.05", "12.4", [("NVIDIA A10", 23028)]),
        (
            "590.44.01-rtx5090-rtx4090-partial.txt",
            "590.44.01",
            "13.1",
            [("NVIDIA GeForce RTX 5090", 32607), ("NVIDIA GeForce RTX 4090", 24564)],
        ),
        # WSL2: "NVIDIA-SMI 595.71.01" is the Linux tool, "Driver Version: 596.36" the Windows driver.
        ("595.71.01-wsl2-driver-596.36-rtx5090.txt", "596.36", "13.2", [("NVIDIA GeForce RTX 5090", 32607)]),
        # R610+: "KMD Version" and "CUDA UMD Version" replace the old header fields.
        ("610.57.04-rtx3090-kmd-umd-header.txt", "610.57.04", "13.3", [("NVIDIA GeForce RTX 3090", 24576)]),
    ],
)
def test_parse_smi_table_reads_driver_cuda_header_and_gpus(name, driver, cuda, gpus):
    facts = gpu.parse_smi_table(fixture(name))
    assert facts.driver == driver
    assert facts.cuda_header == cuda
    assert [(g.name, g.memory_mib) for g in facts.gpus] == gpus
    assert all(g.compute_capability is None for g in facts.gpus)  # the table never shows it


def test_parse_smi_table_does_not_count_process_rows_as_gpus():
    facts = gpu.parse_smi_table(fixture("460.39-rtx2070-laptop.txt"))  # five process rows on GPU 0
    assert len(facts.gpus) == 1


@pytest.mark.parametrize(
    ("header", "driver", "cuda"),
    [
        # header lines rebuilt from the values quoted in data/nvidia-smi/README.md "Findings" (the pastes
        # themselves were cut off): a container (Alibaba Cloud docs) and WSL2 (microsoft/WSL#11277, #11589)
        ("| NVIDIA-SMI 418.181.07   Driver Version: 418.181.07   CUDA Version: N/A |", "418.181.07", None),
        ("| NVIDIA-SMI 535.103   Driver Version: 537.13   CUDA Version: ERR! |", "537.13", None),
        # a snap's old nvidia-smi on a newer driver (canonical/inference-snaps#89)
        ("| NVIDIA-SMI 470.256.02   Driver Version: 580.95.05   CUDA Version: 13.0 |", "580.95.05", "13.0"),
        ("| NVIDIA-SMI 418.181.07   Driver Version: N/A   CUDA Version: N/A |", None, None),
    ],
)
def test_parse_smi_table_header_variants(header, driver, cuda):
    facts = gpu.parse_smi_table(header + "\n")
    assert (facts.driver, facts.cuda_header) == (driver, cuda)


def test_parse_smi_table_of_empty_text_finds_nothing():
    assert gpu.parse_smi_table("") == GpuFacts(driver=None, source="nvidia-smi")


# --------------------------------------------------------------------------------------------------
# parse_query_csv


@pytest.mark.parametrize(
    ("name", "columns", "driver", "gpus"),
    [
        # header row present: it names the columns, in its own order
        (
            "570.86.15-titanv-rtx5880ada-query.csv",
            gpu.QUERY_FIELDS,
            "570.86.15",
            [("NVIDIA TITAN V", "7.0"), ("NVIDIA RTX 5880 Ada Generation", "8.9")],
        ),
        ("570.133.07-compute-cap-query.csv", gpu.QUERY_FIELDS, None, [("", "8.9")]),
        # no header: the queried fields say what each column is
        (
            "551.86-rtx2080ti-windows-query-name-cc-driver.csv",
            ("name", "compute_cap", "driver_version"),
            "551.86",
            [("NVIDIA GeForce RTX 2080 Ti", "7.5")],
        ),
        ("515.57-multi-gpu-driver-version-noheader.csv", ("driver_version",), "515.57", [("", None)] * 2),
        ("515.57-id0-driver-version-noheader.csv", ("driver_version",), "515.57", [("", None)]),
    ],
)
def test_parse_query_csv_recorded_outputs(name, columns, driver, gpus):
    facts = gpu.parse_query_csv(fixture(name), columns)
    assert facts.driver == driver
    assert [(g.name, g.compute_capability) for g in facts.gpus] == gpus


def test_parse_query_csv_default_columns_match_what_detect_asks_for():
    text = "NVIDIA GeForce RTX 4090, 591.86, 8.9, 24564\nNVIDIA GeForce RTX 3090, 591.86, 8.6, 24576\n"
    facts = gpu.parse_query_csv(text)
    assert facts.driver == "591.86"
    assert facts.gpus == (
        Gpu("NVIDIA GeForce RTX 4090", "8.9", 24564),
        Gpu("NVIDIA GeForce RTX 3090", "8.6", 24576),
    )


def test_parse_query_csv_header_with_units_in_another_order():
    text = "memory.total [MiB], name, compute_cap, driver_version\n23028 MiB, NVIDIA A10, 8.6, 550.127.05\n"
    facts = gpu.parse_query_csv(text)
    assert facts.driver == "550.127.05"
    assert facts.gpus == (Gpu("NVIDIA A10", "8.6", 23028),)


def test_parse_query_csv_not_available_values_become_none():
    facts = gpu.parse_query_csv("NVIDIA T4, 535.54.03, [N/A], [Not Supported]\n")
    assert facts.gpus == (Gpu("NVIDIA T4", None, None),)


# --------------------------------------------------------------------------------------------------
# parse_proc_version


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("proc-version-375.74-uv-test.txt", "375.74"),
        ("proc-version-384.98.txt", "384.98"),
        ("proc-version-525.60.11-open-arch.txt", "525.60.11"),
        ("proc-version-535.146.02.txt", "535.146.02"),
        ("proc-version-550.144.03-open-uv-test.txt", "550.144.03"),
        ("proc-version-565.57.01-open.txt", "565.57.01"),
        ("proc-version-580.173.02.txt", "580.173.02"),
        ("proc-version-jetson-orin-35.3.1-aarch64.txt", "35.3.1"),
        ("sys-module-version-535.146.02.txt", "535.146.02"),
    ],
)
def test_parse_proc_version(name, version):
    assert gpu.parse_proc_version(fixture(name)) == version


@pytest.mark.parametrize("text", ["", "\n", "garbage\n", "NVRM version: something else\n"])
def test_parse_proc_version_without_a_version(text):
    assert gpu.parse_proc_version(text) is None


@pytest.mark.parametrize(("version", "desktop"), [("535.146.02", True), ("375.74", True), ("35.3.1", False)])
def test_is_desktop_driver(version, desktop):
    assert gpu.is_desktop_driver(version) is desktop


# --------------------------------------------------------------------------------------------------
# classify_error


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("error-compute-cap-invalid-field-470.182.03.txt", 2, "does not know the field 'compute_cap'"),
        ("error-couldnt-communicate.txt", 9, "could not communicate with the NVIDIA driver"),
        (
            "error-couldnt-communicate-wsl2-nvml-shutdown.txt",
            9,
            "could not communicate with the NVIDIA driver",
        ),
        ("error-driver-mismatch-nvml-535.161.txt", 18, "version mismatch (NVML library 535.161)"),
        ("error-driver-mismatch-nvml-580.178.txt", 18, "version mismatch (NVML library 580.178)"),
        ("error-no-supported-gpus.txt", 255, "no supported NVIDIA GPU"),
        ("error-no-devices-found-rtx5090.txt", 6, "found no NVIDIA GPU"),
    ],
)
def test_classify_error_recorded_failures(name, code, expected):
    assert expected in gpu.classify_error(code, fixture(name))


def test_classify_error_unknown_output_keeps_status_and_first_line():
    reason = gpu.classify_error(
        14, "Unable to determine the device handle for GPU0000:01:00.0: Unknown Error\n"
    )
    assert (
        reason
        == "nvidia-smi exited with status 14: Unable to determine the device handle for GPU0000:01:00.0: Unknown Error"
    )


# --------------------------------------------------------------------------------------------------
# detect() with fake seams

SMI = "/usr/bin/nvidia-smi"
QUERY = [SMI, "--query-gpu=name,driver_version,compute_cap,memory.total", "--format=csv,noheader,nounits"]
QUERY_OLD = [SMI, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"]


class FakeRun:
    """Answers nvidia-smi calls from a list of (returncode, output) or exceptions, recording argv."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[tuple[list[str], float]] = []

    def __call__(self, argv, timeout):
        self.calls.append((argv, timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def files(mapping):
    return lambda path: mapping.get(path)


def which_only(*present):
    """A fake shutil.which: finds "nvidia-smi" at SMI, and absolute paths listed in ``present``."""
    return lambda name: (SMI if name == "nvidia-smi" else name) if name in present else None


def no_run(argv, timeout):
    raise AssertionError(f"nvidia-smi must not run: {argv}")


def test_detect_reads_name_driver_compute_cap_and_memory():
    run = FakeRun((0, "NVIDIA GeForce RTX 4090, 591.86, 8.9, 24564\n"))
    facts = gpu.detect(run=run, read_text=files({}), which=which_only("nvidia-smi"), env={}, timeout=3)
    assert run.calls == [(QUERY, 3)]
    assert facts == GpuFacts(
        driver="591.86", gpus=(Gpu("NVIDIA GeForce RTX 4090", "8.9", 24564),), source="nvidia-smi --query-gpu"
    )


def test_detect_without_nvidia_smi_or_kernel_module_is_an_answer_not_an_exception():
    facts = gpu.detect(run=no_run, read_text=files({}), which=which_only(), env={})
    assert facts.driver is None
    assert "nvidia-smi is not on PATH" in facts.error


def test_detect_finds_nvidia_smi_in_the_wsl2_folder_when_not_on_path():
    run = FakeRun((0, "NVIDIA GeForce RTX 5090, 596.36, 12.0, 32607\n"))
    wsl = "/usr/lib/wsl/lib/nvidia-smi"
    facts = gpu.detect(run=run, read_text=files({}), which=which_only(wsl), env={})
    assert run.calls[0][0][0] == wsl
    assert facts.driver == "596.36"


def test_detect_tries_the_wsl2_nvidia_smi_when_the_one_on_path_fails():
    wsl = "/usr/lib/wsl/lib/nvidia-smi"
    run = FakeRun(
        (9, fixture("error-couldnt-communicate.txt")), (0, "NVIDIA GeForce RTX 5090, 596.36, 12.0, 32607\n")
    )
    facts = gpu.detect(run=run, read_text=files({}), which=which_only("nvidia-smi", wsl), env={})
    assert [argv[0] for argv, _ in run.calls] == [SMI, wsl]
    assert facts.driver == "596.36"


def test_detect_reports_the_first_failure_when_every_nvidia_smi_fails():
    wsl = "/usr/lib/wsl/lib/nvidia-smi"
    run = FakeRun((9, fixture("error-couldnt-communicate.txt")), TimeoutError())
    facts = gpu.detect(run=run, read_text=files({}), which=which_only("nvidia-smi", wsl), env={})
    assert facts.driver is None
    assert "could not communicate" in facts.error


def test_detect_hanging_nvidia_smi_gives_driver_none():
    run = FakeRun(TimeoutError("no answer"))
    facts = gpu.detect(run=run, read_text=files({}), which=which_only("nvidia-smi"), env={}, timeout=2)
    assert facts.driver is None
    assert facts.error == "nvidia-smi hung (no answer within 2s)"


def test_detect_unrunnable_nvidia_smi_gives_driver_none():
    run = FakeRun(PermissionError(13, "Permission denied"))
    facts = gpu.detect(run=run, read_text=files({}), which=which_only("nvidia-smi"), env={})
    assert facts.driver is None
    assert "could not run nvidia-smi" in facts.error


def test_detect_driver_mismatch_exit_18_does_not_fall_back_to_proc():
    # The kernel module still reports 580.173.02, but CUDA cannot use a mismatched driver either.
    run = FakeRun((18, fixture("error-driver-mismatch-nvml-580.178.txt")))
    proc = {"/proc/driver/nvidia/version": fixture("proc-version-580.173.02.txt")}
    facts = gpu.detect(run=run, read_text=files(proc), which=which_only("nvidia-smi"), env={})
    assert facts.driver is None
    assert "version mismatch (NVML library 580.178)" in facts.error
    assert len(run.calls) == 1


@pytest.mark.parametrize(
    "name",
    ["error-couldnt-communicate.txt", "error-no-supported-gpus.txt", "error-no-devices-found-rtx5090.txt"],
)
def test_detect_failing_nvidia_smi_reports_the_reason(name):
    run = FakeRun((255, fixture(name)))
    facts = gpu.detect(run=run, read_text=files({}), which=which_only("nvidia-smi"), env={})
    assert facts.driver is None
    assert facts.error == gpu.classify_error(255, fixture(name))


def test_detect_retries_without_compute_cap_on_old_drivers():
    run = FakeRun(
        (2, fixture("error-compute-cap-invalid-field-470.182.03.txt")),
        (0, "Tesla T4, 470.182.03, 15109\n"),
    )
    facts = gpu.detect(run=run, read_text=files({}), which=which_only("nvidia-smi"), env={})
    assert [argv for argv, _ in run.calls] == [QUERY, QUERY_OLD]
    assert facts.driver == "470.182.03"
    assert facts.gpus == (Gpu("Tesla T4", None, 15109),)
    assert "no compute_cap" in facts.source
    assert facts.error is None


def test_detect_retry_failure_is_reported():
    run = FakeRun(
        (2, fixture("error-compute-cap-invalid-field-470.182.03.txt")),
        (9, fixture("error-couldnt-communicate.txt")),
    )
    facts = gpu.detect(run=run, read_text=files({}), which=which_only("nvidia-smi"), env={})
    assert facts.driver is None
    assert "could not communicate" in facts.error


def test_detect_empty_answer_is_an_error():
    facts = gpu.detect(run=FakeRun((0, "")), read_text=files({}), which=which_only("nvidia-smi"), env={})
    assert facts.driver is None
    assert facts.error == "nvidia-smi printed no driver version"


def test_detect_without_nvidia_smi_reads_sys_module_first():
    texts = {
        "/sys/module/nvidia/version": fixture("sys-module-version-535.146.02.txt"),
        "/proc/driver/nvidia/version": fixture("proc-version-580.173.02.txt"),
    }
    facts = gpu.detect(run=no_run, read_text=files(texts), which=which_only(), env={})
    assert facts == GpuFacts(driver="535.146.02", source="/sys/module/nvidia/version")


def test_detect_without_nvidia_smi_falls_back_to_proc():
    texts = {"/proc/driver/nvidia/version": fixture("proc-version-565.57.01-open.txt")}
    facts = gpu.detect(run=no_run, read_text=files(texts), which=which_only(), env={})
    assert facts == GpuFacts(driver="565.57.01", source="/proc/driver/nvidia/version")


def test_detect_jetson_kernel_module_is_not_a_driver():
    texts = {"/proc/driver/nvidia/version": fixture("proc-version-jetson-orin-35.3.1-aarch64.txt")}
    facts = gpu.detect(run=no_run, read_text=files(texts), which=which_only(), env={})
    assert facts.driver is None
    assert "35.3.1" in facts.error and "Jetson" in facts.error


def test_detect_env_override_wins_over_everything():
    facts = gpu.detect(run=no_run, read_text=no_run, which=no_run, env={gpu.ENV_DRIVER: "550.54.14"})
    assert facts == GpuFacts(driver="550.54.14", source="env NLPSETUP_CUDA_DRIVER")


@pytest.mark.parametrize(
    ("value", "error"), [("none", "asks for no GPU"), ("latest", "is not a driver version")]
)
def test_detect_env_override_without_a_driver(value, error):
    facts = gpu.detect(run=no_run, read_text=no_run, which=no_run, env={gpu.ENV_DRIVER: value})
    assert facts.driver is None
    assert error in facts.error


def test_detect_blank_env_override_is_ignored():
    run = FakeRun((0, "NVIDIA A10, 550.127.05, 8.6, 23028\n"))
    facts = gpu.detect(
        run=run, read_text=files({}), which=which_only("nvidia-smi"), env={gpu.ENV_DRIVER: " "}
    )
    assert facts.driver == "550.127.05"


# --------------------------------------------------------------------------------------------------
# GpuFacts JSON


@pytest.mark.parametrize(
    "facts",
    [
        GpuFacts(driver=None, error="nvidia-smi hung"),
        GpuFacts(
            driver="535.161.08", cuda_header="12.2", source="nvidia-smi", gpus=(Gpu(H100, None, 81559),) * 2
        ),
        GpuFacts(
            driver="591.86",
            gpus=(Gpu("NVIDIA GeForce RTX 4090", "8.9", 24564),),
            source="nvidia-smi --query-gpu",
        ),
    ],
)
def test_gpu_facts_round_trip_through_json(facts):
    assert GpuFacts.from_dict(json.loads(json.dumps(facts.to_dict()))) == facts


def test_gpu_sm_name():
    assert Gpu("NVIDIA GeForce RTX 5090", "12.0").sm == "sm_120"
    assert Gpu("NVIDIA GeForce GTX 1080 Ti", "6.1").sm == "sm_61"
    assert Gpu("Tesla T4").sm is None


# --------------------------------------------------------------------------------------------------
# Tables


def test_every_table_row_names_its_source():
    t = compute.load_tables()
    rows = [*t.cuda, *t.torch, *t.builds.values()]
    assert all(r.source.strip() for r in rows)
    assert t.sizes["source"].strip()


def test_tables_are_consistent():
    t = compute.load_tables()
    versions = [r.version for r in t.cuda]
    assert len(versions) == len(set(versions))
    for r in t.cuda:
        Version(r.linux_min_driver), Version(r.windows_min_driver)
    for r in t.torch:
        assert set(r.builds) <= set(t.builds), r.release
    for tag, b in t.builds.items():
        assert t.cuda_row(b.cuda) is not None, tag
        assert tag == "cu" + b.cuda.replace(".", ""), tag
        assert Version(b.min_compute_capability) <= Version(b.max_compute_capability)


def test_tables_cover_torch_1_7_to_2_14_and_cuda_10_to_13_2():
    t = compute.load_tables()
    assert {r.release for r in t.torch} >= {f"1.{m}" for m in range(7, 14)} | {f"2.{m}" for m in range(15)}
    assert {
        "10.0",
        "10.1",
        "10.2",
        "11.0",
        "11.8",
        "12.1",
        "12.4",
        "12.6",
        "12.8",
        "12.9",
        "13.0",
        "13.2",
    } <= {r.version for r in t.cuda}


def test_minimum_drivers_never_decrease_with_cuda_version():
    rows = sorted(compute.load_tables().cuda, key=lambda r: Version(r.version))
    for older, newer in zip(rows, rows[1:], strict=False):
        assert Version(older.linux_min_driver) <= Version(newer.linux_min_driver)
        assert Version(older.windows_min_driver) <= Version(newer.windows_min_driver)


# --------------------------------------------------------------------------------------------------
# cuda_versions_for_driver


@pytest.mark.parametrize(
    ("driver", "os", "newest"),
    [
        ("410.48", "linux", "10.0"),
        ("418.67", "linux", "10.1"),
        ("440.33", "linux", "10.2"),
        ("440.100", "linux", "10.2"),
        ("450.36.06", "linux", "11.0"),
        ("450.80.02", "linux", "11.8"),
        ("470.63.01", "linux", "11.8"),
        ("525.60.11", "linux", "11.8"),  # just under 12.x's 525.60.13
        ("525.60.13", "linux", "12.9"),
        ("535.161.08", "linux", "12.9"),
        ("579.99", "linux", "12.9"),
        ("580.65.06", "linux", "13.2"),
        ("610.57.04", "linux", "13.2"),
        ("418.96", "windows", "10.1"),
        ("452.39", "windows", "11.8"),
        ("527.41", "windows", "11.8"),  # ltt's old Windows 12.0 value; the minor-version minimum is 528.33
        ("528.33", "windows", "12.9"),
        ("551.86", "windows", "12.9"),
        ("596.36", "windows", "13.2"),
    ],
)
def test_cuda_versions_for_driver(driver, os, newest):
    versions = compute.cuda_versions_for_driver(driver, os)
    assert versions[0] == newest
    assert versions == sorted(versions, key=Version, reverse=True)


def test_cuda_versions_for_driver_too_old_or_macos():
    assert compute.cuda_versions_for_driver("384.98", "linux") == []
    assert compute.cuda_versions_for_driver("580.65.06", "macos") == []


def test_cuda_versions_for_driver_rejects_bad_input():
    with pytest.raises(ValueError, match="not a driver version"):
        compute.cuda_versions_for_driver("N/A", "linux")
    with pytest.raises(ValueError, match="unknown os"):
        compute.cuda_versions_for_driver("535.54.03", "solaris")


# --------------------------------------------------------------------------------------------------
# torch_builds


@pytest.mark.parametrize(
    ("spec", "python", "builds"),
    [
        ("==1.7.1", "3.8", ["cu110", "cu102", "cu101", "cu92"]),
        ("==1.10.*", "3.8", ["cu113", "cu111", "cu102"]),
        ("==1.10.*", "3.10", []),  # 1.10 has no Python 3.10 wheels
        (">=1.11,<1.12", "3.10", ["cu115", "cu113", "cu102"]),
        ("==2.0.1", "3.11", ["cu118", "cu117"]),
        ("==2.8.0", "3.12", ["cu129", "cu128", "cu126"]),
        # newest torch first, then its newest CUDA: 2.9's builds come before 2.8's cu129
        (">=2.8,<2.10", "3.12", ["cu130", "cu128", "cu126", "cu129"]),
        ("==2.9.1", "3.9", []),  # 2.9 dropped 3.9
        ("~=2.12.0", "3.15", []),
        ("==2.13.0", "3.15", ["cu132", "cu130", "cu126"]),
        (">2.8.0,<2.9", "3.12", ["cu129", "cu128", "cu126"]),  # 2.8.1 and later
        ("<2.8", "3.13", ["cu128", "cu126", "cu118", "cu124", "cu121"]),  # 2.7, 2.6, then 2.5 (experimental)
        ("", "3.12", ["cu132", "cu130", "cu126", "cu128", "cu129", "cu118", "cu124", "cu121"]),
    ],
)
def test_torch_builds(spec, python, builds):
    assert compute.torch_builds(spec, python) == builds


def test_torch_builds_rejects_a_bad_specifier():
    with pytest.raises(ValueError, match="not a version specifier"):
        compute.torch_builds("2.8", "3.12")


# --------------------------------------------------------------------------------------------------
# choose_backend

GTX_1080_TI = Gpu("NVIDIA GeForce GTX 1080 Ti", "6.1", 11264)
TITAN_V = Gpu("NVIDIA TITAN V", "7.0")
RTX_5880 = Gpu("NVIDIA RTX 5880 Ada Generation", "8.9")
RTX_5090 = Gpu("NVIDIA GeForce RTX 5090", "12.0", 32607)
RTX_4090 = Gpu("NVIDIA GeForce RTX 4090", "8.9", 24564)
H100_GPU = Gpu(H100, "9.0", 81559)

TORCH_1_7 = ["cu110", "cu102", "cu101", "cu92"]
TORCH_1_10 = ["cu113", "cu111", "cu102"]
TORCH_2_8 = ["cu129", "cu128", "cu126"]
TORCH_2_11 = ["cu130", "cu128", "cu126"]
TORCH_2_12 = ["cu132", "cu130", "cu126"]


def facts(driver, *gpus, error=None):
    return GpuFacts(driver=driver, gpus=tuple(gpus), error=error)


@pytest.mark.parametrize(
    ("candidates", "host", "os", "backend", "in_reason"),
    [
        (
            TORCH_2_12,
            facts(None, error="nvidia-smi is not on PATH"),
            "linux",
            "cpu",
            "no NVIDIA driver found: nvidia-smi",
        ),
        (TORCH_1_10, facts("418.67"), "linux", "cpu", "cu102 needs driver >= 440.33"),
        (TORCH_1_7, facts("418.67"), "linux", "cu101", "driver 418.67 runs CUDA <= 10.1"),
        (TORCH_1_10, facts("440.100"), "linux", "cu102", "cu102"),
        (TORCH_1_10, facts("470.63.01"), "linux", "cu113", "CUDA <= 11.8"),
        (TORCH_2_8, facts("535.161.08", H100_GPU), "linux", "cu129", "sm_90"),
        (TORCH_2_12, facts("535.161.08", H100_GPU), "linux", "cu126", "cu130 needs driver >= 580"),
        (["cu130", "cu126"], facts("580.65.06"), "linux", "cu130", "compute capability unknown"),
        # candidates are taken in the caller's order (torch_builds: newest torch first), not by CUDA
        (["cu126", "cu129"], facts("575.51.03"), "linux", "cu126", "compute capability unknown"),
        (TORCH_2_12, facts("580.65.06"), "linux", "cu132", "CUDA <= 13.2"),
        (["cu126", "cu130"], facts("580.65.06", GTX_1080_TI), "linux", "cu126", "sm_61"),
        (
            ["cu130"],
            facts("580.65.06", GTX_1080_TI),
            "linux",
            "cpu",
            "is sm_61 (compute capability 6.1) but cu130 needs sm_75",
        ),
        (TORCH_2_8, facts("575.51.03", GTX_1080_TI), "linux", "cu126", "cu129 needs sm_70"),
        # Blackwell needs a 12.8+ build: cu126 has kernels up to sm_90 only
        (["cu126"], facts("590.44.01", RTX_5090, RTX_4090), "linux", "cpu", "RTX 5090 is sm_120"),
        (TORCH_2_8, facts("590.44.01", RTX_5090, RTX_4090), "linux", "cu129", "sm_89, sm_120"),
        # every GPU must fit: the TITAN V (sm_70) rules out cu128 (sm_75+)
        (TORCH_2_11, facts("570.86.15", TITAN_V, RTX_5880), "linux", "cu126", "TITAN V is sm_70"),
        # WSL2 reports the Windows driver, which the Linux table accepts for 13.x
        (TORCH_2_11, facts("596.36", RTX_5090), "linux", "cu130", "sm_120"),
        (["cu121", "cu118"], facts("527.41"), "windows", "cu118", "cu121 needs driver >= 528.33"),
        (["cu121", "cu118"], facts("527.41"), "linux", "cu121", "CUDA <= 12.9"),
        (
            ["cu121", "cu118"],
            facts("551.86", Gpu("NVIDIA GeForce RTX 2080 Ti", "7.5")),
            "windows",
            "cu121",
            "sm_75",
        ),
        (TORCH_2_12, facts("580.65.06", RTX_5090), "macos", "cpu", "PyTorch has no CUDA builds for macOS"),
        ([], facts("580.65.06"), "linux", "cpu", "no CUDA builds"),
        (["rocm6.4"], facts("580.65.06"), "linux", "cpu", "no CUDA builds"),
        (TORCH_2_12, facts("garbage"), "linux", "cpu", "cannot read driver version"),
    ],
)
def test_choose_backend_auto(candidates, host, os, backend, in_reason):
    choice = compute.choose_backend(candidates, host, os)
    assert choice.backend == backend
    assert in_reason in choice.reason
    assert choice.warning is None
    assert choice.cuda == (None if backend == "cpu" else compute.load_tables().builds[backend].cuda)


def test_choose_backend_request_cpu_ignores_the_gpu():
    choice = compute.choose_backend(TORCH_2_12, facts("580.65.06", RTX_5090), "linux", request="cpu")
    assert (choice.backend, choice.reason, choice.cuda) == ("cpu", "CPU build requested", None)


def test_choose_backend_request_a_build_the_host_can_run():
    choice = compute.choose_backend(TORCH_2_12, facts("580.65.06", RTX_5090), "linux", request="cu130")
    assert (choice.backend, choice.cuda, choice.warning) == ("cu130", "13.0", None)


def test_choose_backend_request_a_build_the_host_cannot_run_returns_it_with_a_warning():
    choice = compute.choose_backend(
        ["cu126", "cu130"], facts("535.161.08", GTX_1080_TI), "linux", request="CU130"
    )
    assert choice.backend == "cu130"
    assert "driver >= 580" in choice.warning
    assert "sm_61" in choice.warning and "7.5" in choice.warning


def test_choose_backend_request_without_a_driver_warns():
    choice = compute.choose_backend(TORCH_2_12, facts(None, error="nvidia-smi hung"), "linux", request="cu126")
    assert choice.backend == "cu126"
    assert choice.warning == "no NVIDIA driver found: nvidia-smi hung"


@pytest.mark.parametrize(
    ("request_", "message"), [("cu118", "not published"), ("rocm", "unknown compute backend")]
)
def test_choose_backend_impossible_requests_raise(request_, message):
    with pytest.raises(InvalidComputeRequest, match=message):
        compute.choose_backend(TORCH_2_12, facts("580.65.06"), "linux", request=request_)


def test_choose_backend_from_recorded_outputs():
    """End to end on fixtures: parse, then choose for torch 2.8 on Python 3.12."""
    candidates = compute.torch_builds("==2.8.*", "3.12")
    wsl = gpu.parse_smi_table(fixture("595.71.01-wsl2-driver-596.36-rtx5090.txt"))
    assert compute.choose_backend(candidates, wsl, "linux").backend == "cu129"
    old = gpu.parse_smi_table(fixture("418.67-tesla-v100-pcie.txt"))
    choice = compute.choose_backend(candidates, old, "linux")
    assert choice.backend == "cpu"
    assert "driver 418.67 runs CUDA <= 10.1" in choice.reason


# --------------------------------------------------------------------------------------------------
# index URL and sizes


@pytest.mark.parametrize(
    ("backend", "mirror", "url"),
    [
        ("cu126", None, "https://download.pytorch.org/whl/cu126"),
        ("cpu", None, "https://download.pytorch.org/whl/cpu"),
        ("cu130", "https://mirror.example/pytorch/whl/", "https://mirror.example/pytorch/whl/cu130"),
        ("cpu", "http://localhost:8080/whl", "http://localhost:8080/whl/cpu"),
    ],
)
def test_torch_index_url(backend, mirror, url):
    assert compute.torch_index_url(backend, mirror) == url


def test_cuda_builds_cost_several_gigabytes_more_than_cpu():
    assert compute.torch_size_mb("cpu") < 1000 < 4000 < compute.torch_size_mb("cu130")


def test_a_plain_driver_branch_means_any_release_of_it():
    # NLPSETUP_CUDA_DRIVER=525 is a 525.x driver: CUDA 12.x runs on it (12.x needs >= 525.60.13)
    assert compute.cuda_versions_for_driver("525", "linux")[0] == "12.9"
    choice = compute.choose_backend(compute.torch_builds(">=2.10,<2.15", "3.12"), gpu.GpuFacts(driver="525"), "linux")
    assert choice.backend == "cu126" and "driver 525 runs CUDA <= 12.9" in choice.reason


def test_the_newest_torch_wins_over_the_newest_cuda():
    # a 550 driver: torch 2.8's cu129 is the newest CUDA it runs, torch 2.14's cu126 the newest torch
    builds = compute.torch_builds(">=2.8", "3.12")
    choice = compute.choose_backend(builds, gpu.GpuFacts(driver="550.54.15", gpus=(Gpu("NVIDIA L4", "8.9"),)), "linux")
    assert choice.backend == "cu126"
    assert compute.torch_release_for("cu126", ">=2.8", "3.12") == "2.14"


def test_blackwell_on_a_driver_older_than_570_is_an_impossible_pair():
    facts = gpu.GpuFacts(driver="550.54.15", gpus=(Gpu("NVIDIA GeForce RTX 5090", "12.0"),))
    choice = compute.choose_backend(compute.torch_builds(">=2.8", "3.12"), facts, "linux")
    assert choice.backend == "cpu"
    assert "impossible pair" in choice.reason and "sm_120" in choice.reason and ">= 570" in choice.reason
