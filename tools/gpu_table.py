"""Print which torch build nlpsetup picks per NVIDIA driver and compute capability (Linux).

    .venv/bin/python tools/gpu_table.py [TORCH_SPEC] [PYTHON]     # default: any torch, Python 3.12
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "installer"))
from nlpsetup.facts import gpu  # noqa: E402
from nlpsetup.resolve import compute  # noqa: E402

DRIVERS = ("470", "495", "510", "515", "520", "525", "530", "535", "545", "550", "555", "560", "565",
           "570", "575", "580")
CCS = ("6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0")


def cell(spec: str, python: str, driver: str, cc: str) -> str:
    facts = gpu.GpuFacts(driver=driver, gpus=(gpu.Gpu("GPU", cc),))
    choice = compute.choose_backend(compute.torch_builds(spec, python), facts, "linux")
    if choice.backend == "cpu":
        return "impossible" if "impossible pair" in choice.reason else "cpu"
    return f"{compute.torch_release_for(choice.backend, spec, python)} {choice.backend}"


def main() -> None:
    spec = sys.argv[1] if len(sys.argv) > 1 else ""
    python = sys.argv[2] if len(sys.argv) > 2 else "3.12"
    print(f"torch{spec or ' (any)'} on Python {python}, Linux: torch release and build per driver x compute capability")
    print("| driver | " + " | ".join(f"sm {cc}" for cc in CCS) + " |")
    print("|---" * (len(CCS) + 1) + "|")
    for d in DRIVERS:
        print(f"| {d}.x | " + " | ".join(cell(spec, python, d, cc) for cc in CCS) + " |")


if __name__ == "__main__":
    main()
