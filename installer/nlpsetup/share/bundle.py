"""Offline bundles: a folder with every wheel an env needs, the lock that names them with their
hashes, the recipe and a README, so that `install --from-bundle DIR` builds and verifies the env on
a host with no network at all.

Wheels are fetched with `pip download --only-binary=:all:` for the target's Python and platform tags
(uv has no download command), so a bundle made here can serve another Linux or macOS host; binary
wheels only, because an air-gapped host cannot fetch the build requirements of an sdist. The
bundle's lock is made from the downloaded files themselves: each hash is of the very file the
offline install will check.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from nlpsetup import __version__
from nlpsetup.base import paths, proc
from nlpsetup.base.errors import EXIT_FAILED, EXIT_REFUSED, NlpsetupError
from nlpsetup.base.files import sha256_file
from nlpsetup.base.redact import mask_text
from nlpsetup.recipes.model import TORCH_FAMILY
from nlpsetup.resolve import cutoff
from nlpsetup.share import lockfile

LOCK = "nlpsetup.lock.json"
WHEELS = "wheels"
_TOOLING = {"pip", "wheel"}
_MACOS = ((10, 9), (10, 10), (10, 11), (10, 12), (10, 13), (10, 14), (10, 15), (11, 0), (12, 0), (13, 0),
          (14, 0), (15, 0))


@dataclass(frozen=True)
class Target:
    """The host a bundle is for: its OS, CPU, glibc and Python (this host's when not given)."""

    os: str
    arch: str
    python: str  # X.Y
    libc_version: str | None = None

    def platform_tags(self) -> list[str]:
        """The platform tags pip accepts wheels for on the target, newest first."""
        if self.os == "linux":
            machine = "aarch64" if self.arch == "arm64" else self.arch
            top = int((self.libc_version or "2.17").split(".")[1])
            tags = [f"manylinux_2_{m}_{machine}" for m in range(top, 16, -1)]
            return tags + [f"manylinux2014_{machine}"] + (
                [f"manylinux2010_{machine}", f"manylinux1_{machine}"] if machine == "x86_64" else [])
        if self.os == "macos":
            machine = self.arch
            versions = [v for v in _MACOS if machine == "x86_64" or v >= (11, 0)]
            return [f"macosx_{a}_{b}_{kind}" for a, b in reversed(versions) for kind in (machine, "universal2")]
        return ["win_arm64" if self.arch == "arm64" else "win_amd64"]

    def download_args(self) -> list[str]:
        abi = f"cp{self.python.replace('.', '')}"
        args = ["--only-binary=:all:", "--python-version", self.python, "--implementation", "cp", "--abi", abi]
        for tag in self.platform_tags():
            args += ["--platform", tag]
        return args


@dataclass
class Bundle:
    path: str
    lock: dict
    files: int
    size_bytes: int
    env_size_bytes: int | None
    log: str
    env_size_estimated: bool = False  # the recipe's size_mb, for a tool bundled without an env

    def to_dict(self) -> dict:
        return {"path": self.path, "env": self.lock.get("env"), "files": self.files, "size_bytes": self.size_bytes,
                "env_size_bytes": self.env_size_bytes,
                "env_size_estimated": self.env_size_estimated, "python": self.lock["python"]["version"],
                "platform": self.lock["platform"], "log": self.log}



def _download(argv_tail: list[str], dest: Path, target: Target, log, *, index: str | None, timeout: int) -> None:
    """pip download into `dest`; an index travels in the environment, never in argv."""
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "-d", str(dest),
            *target.download_args(), *argv_tail]
    env = proc.child_env({"PIP_PROGRESS_BAR": "off", **({"PIP_INDEX_URL": index} if index else {})})
    log.write(f"\n## download {' '.join(mask_text(a) for a in argv_tail[:6])}\n")
    r = proc.run(argv, env=env, timeout=timeout, log=log)
    if not r.ok:
        from nlpsetup.base import diagnose

        raise NlpsetupError(f"pip download failed (exit {r.returncode}): {r.tail[-1] if r.tail else ''}",
                            hint=diagnose.diagnose(r.tail) or f"see the log: {log.name}", exit_code=EXIT_FAILED)


def _lock_of_files(wheels: Path, base: dict) -> dict:
    dists: dict[str, str] = {}
    hashes: dict[str, set[str]] = {}
    for f in sorted(wheels.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(f.name)
        if dists.setdefault(name, str(version)) != str(version):
            raise NlpsetupError(f"the bundle holds two releases of {name}: {dists[name]} and {version}",
                                hint="bundle into an empty folder")
        hashes.setdefault(name, set()).add(f"sha256:{sha256_file(f)}")
    return {**base, "distributions": dict(sorted(dists.items())),
            "hashes": {k: sorted(v) for k, v in sorted(hashes.items())}, "indexes": []}


def of_env(env_path: Path, out: Path, target: Target | None, *, home: Path, timeout: int = 3600) -> Bundle:
    """Bundle the exact releases an installed env holds."""
    data = lockfile.lockable_manifest(env_path)
    lock = lockfile.from_manifest(data)
    host = data.get("host") or {}
    target = target or Target(host.get("os") or "linux", host.get("arch") or "x86_64",
                              ".".join(lock["python"]["version"].split(".")[:2]), host.get("libc_version"))
    sources = lockfile.sources_for(data)
    pins = {k: v for k, v in lock["distributions"].items() if canonicalize_name(k) not in _TOOLING}
    torch = [f"{k}=={v}" for k, v in pins.items() if canonicalize_name(k) in TORCH_FAMILY]
    rest = [f"{k}=={v}" for k, v in pins.items() if canonicalize_name(k) not in TORCH_FAMILY]
    batches = [(rest, None), (torch, sources.torch_index)]
    recipes = [t.get("name") for t in lock["tools"]]
    return _write(out, lock, target, batches, recipes, home, timeout, no_deps=True,
                  env_size=data.get("size_bytes") if isinstance(data.get("size_bytes"), int) else None)


def _check_cutoff(plan) -> None:
    """A bundle is downloaded by this nlpsetup's own pip: a cutoff needs pip 26+ there."""
    from importlib import metadata

    try:
        pip = metadata.version("pip")
    except metadata.PackageNotFoundError:
        pip = None
    if plan.as_of is not None and not cutoff.pip_supports(pip):
        raise NlpsetupError(f"bundle downloads with nlpsetup's own pip ({pip or 'none'}), which cannot apply as_of "
                            f"{plan.as_of.date}: --uploaded-prior-to needs pip 26.0 or newer",
                            hint=f"upgrade it: {sys.executable} -m pip install 'pip>=26', or pass --as-of latest",
                            exit_code=EXIT_REFUSED)


def of_plan(plan, out: Path, target: Target, *, home: Path, timeout: int = 3600) -> Bundle:
    """Bundle what a plan would install: its packages under its pins, resolved for the target."""
    constraints = out / "constraints.txt"
    _check_cutoff(plan)
    batches = []
    for step in plan.steps:
        if step.name not in ("pre", "framework", "exempt", "install"):
            continue
        args = list(step.args)
        if plan.requirements and step.name == "install":  # uv resolves in an env; here pip download does
            args = [cutoff.PIP_FLAG, plan.as_of.instant, *plan.requirements,
                    *(("-c", str(Path(plan.env_path) / "nlpsetup-constraints.txt")) if plan.constraints else ())]
        index = None
        if "--index-url" in args:
            i = args.index("--index-url")
            index = args[i + 1]
            del args[i:i + 2]
        args = [str(constraints) if a == str(Path(plan.env_path) / "nlpsetup-constraints.txt") else a
                for a in args if a != "--prefer-binary"]
        batches.append((args, index))
    v = plan.variant
    base = {"kind": lockfile.KIND, "schema_version": lockfile.SCHEMA_VERSION, "nlpsetup_version": __version__,
            "env": plan.env_name,
            "tools": [{"name": plan.tool, "request": plan.request, "variant": v.id,
                       "recipe_digest": plan.recipe_digest, "smoke": v.smoke.to_dict()}],
            "python": {"version": target.python, "implementation": "CPython"},
            "platform": {"os": target.os, "arch": target.arch, "libc": "glibc" if target.os == "linux" else None,
                         "libc_version": target.libc_version if target.os == "linux" else None},
            "compute": {"backend": plan.compute.backend if plan.compute else "cpu",
                        "reason": plan.compute.reason if plan.compute else "no GPU-specific packages",
                        "index": mask_text(plan.torch_index) if plan.torch_index else None},
            "install_env": {k: mask_text(x) for k, x in v.env},
            "as_of": plan.as_of.to_dict() if plan.as_of else None}
    env_size = v.size_mb * 1024 * 1024 if getattr(v, "size_mb", None) else None
    b = _write(out, base, target, batches, [plan.tool], home, timeout, no_deps=False, env_size=env_size,
               constraints="".join(f"{c}\n" for c in plan.constraints))
    b.env_size_estimated = env_size is not None
    return b


def _write(out: Path, base: dict, target: Target, batches, recipes: list, home: Path, timeout: int, *,
           no_deps: bool, env_size: int | None, constraints: str = "") -> Bundle:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NlpsetupError(f"{out} is not an empty folder", hint="bundle into a new folder (-o DIR)")
    created = not out.exists()
    try:
        return _fill(out, base, target, batches, recipes, home, timeout, no_deps, env_size, constraints)
    except BaseException:
        # A half-written bundle must not pass for a whole one; only a folder this call made is removed.
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _fill(out, base, target, batches, recipes, home, timeout, no_deps, env_size, constraints) -> Bundle:
    out.mkdir(parents=True, exist_ok=True)
    if constraints:
        (out / "constraints.txt").write_text(constraints, encoding="utf-8")
    wheels = out / WHEELS
    wheels.mkdir(parents=True, exist_ok=True)
    logs = paths.logs_dir(home)
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"bundle-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(f"# nlpsetup {__version__} bundle {base.get('env')} -> {out} for {target}\n")
        for i, (args, index) in enumerate(batches):
            # What an earlier batch fetched (the PyTorch build) satisfies the later ones, as the
            # framework step's install does for the install step.
            seen = ["--find-links", str(wheels)] if i else []
            if args:
                _download([*(["--no-deps"] if no_deps else []), *seen, *args], wheels, target, log, index=index,
                          timeout=timeout)
    if not any(wheels.glob("*.whl")):
        raise NlpsetupError("pip download fetched no wheels", hint=f"see the log: {log_path}", exit_code=EXIT_FAILED)
    lock = _lock_of_files(wheels, base)
    for sdist in [p for p in wheels.iterdir() if not p.name.endswith(".whl")]:
        sdist.unlink()  # never installed offline: the lock names wheels only
    lockfile.write(str(out / LOCK), lock)
    _copy_recipes(recipes, out)
    (out / "README.md").write_text(_readme(lock, target), encoding="utf-8")
    size = sum(p.stat().st_size for p in wheels.iterdir())
    return Bundle(str(out), lock, len(list(wheels.iterdir())), size, env_size, str(log_path))


def _copy_recipes(names: list, out: Path) -> None:
    from nlpsetup.recipes import load as recipes

    book = recipes.load_book(paths.recipe_dirs())
    for name in names:
        recipe = book.find(name) if name else None
        if recipe is not None and recipe.path and Path(recipe.path).is_file():
            shutil.copyfile(recipe.path, out / f"{recipe.name}.toml")


def _readme(lock: dict, target: Target) -> str:
    tools = ", ".join(f"{t['name']} {t.get('variant', '')}".strip() for t in lock["tools"]) or lock.get("env")
    return f"""# nlpsetup offline bundle: {tools}

For {target.os} {target.arch}, CPython {target.python}{f' (glibc {target.libc_version}+)' if target.os == 'linux' and
target.libc_version else ''}; {len(lock['distributions'])} wheels in `{WHEELS}/`,
pinned with their sha256 in `{LOCK}`. Made by nlpsetup {__version__}.

Install with no network (the env is built, checked against the hashes and verified by its smoke checks):

    nlpsetup install --from-bundle THIS_FOLDER [--name ENV]

Without nlpsetup: `python -m venv ENV && ENV/bin/pip install --no-index --find-links {WHEELS} --no-deps \\
--require-hashes -r requirements.txt` (write requirements.txt with `nlpsetup export`), or copy
`{WHEELS}/` next to any pip.
"""


def _regular(entry: os.DirEntry) -> bool:
    try:
        return stat.S_ISREG(entry.stat().st_mode)
    except OSError:  # a dangling link
        return False


def check_folder(folder: str) -> tuple[str, str]:
    """(lock file, wheels folder) of a bundle, or exit 2 naming what is missing."""
    root = Path(folder)
    lock, wheels = root / LOCK, root / WHEELS
    if not root.is_dir():
        raise NlpsetupError(f"--from-bundle {folder}: not a folder", hint="pass a folder written by: nlpsetup bundle")
    if not lock.is_file() or not wheels.is_dir():
        raise NlpsetupError(f"--from-bundle {folder}: no {LOCK} and {WHEELS}/ in it",
                            hint="pass a folder written by: nlpsetup bundle TOOL -o DIR")
    for entry in os.scandir(wheels):  # pip would block reading a FIFO, or read a device forever
        if not _regular(entry):
            raise NlpsetupError(f"--from-bundle {folder}: {WHEELS}/{entry.name} is not a regular file",
                                hint="write the bundle again: nlpsetup bundle TOOL -o DIR")
    return str(lock), str(wheels.resolve())
