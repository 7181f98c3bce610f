"""One env as a value: where its parts are, how it is created, and what it holds.

This is the only module that knows an env's layout (bin or Scripts, the interpreter's name,
site-packages, the manifest); everything else asks an `Env`. Reading never starts the env's
interpreter except `interpreter_runs`, which exists to find out whether it still starts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "nlpsetup.json"
CONSTRAINTS = "nlpsetup-constraints.txt"
LOCK = "nlpsetup-lock.json"  # the lock an env was built from (install --from-lock), for `reinstall`
VERIFIED = "nlpsetup-verified.json"  # the last verdict of its smoke checks: {"ok", "at"}
# Written into the env's root as soon as it is created, before anything is installed: the proof
# that nlpsetup built the folder, without which doctor --fix deletes nothing (a manifest comes
# only at the end of an install).
MARKER = ".nlpsetup-env"
# How an env can be created; the plan names one, `create_argv` spells it out.
CREATE_METHODS = ("virtualenv", "venv", "uv", "conda")


def this_os() -> str:
    return {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")


class _InRoot:
    """An env's file of a fixed name in its root: `env.lock_path` is `env.path / LOCK`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, env: Env | None, owner: type | None = None):
        return self if env is None else env.path / self.name


@dataclass(frozen=True)
class Env:
    path: Path
    os: str = field(default_factory=this_os)  # the OS it is laid out for (plans may be for another)

    @classmethod
    def at(cls, path: str | Path, os_name: str | None = None) -> Env:
        return cls(Path(path), os_name or this_os())

    # --- layout -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def windows(self) -> bool:
        return self.os == "windows"

    @property
    def bin_dir(self) -> Path:
        return self.path / ("Scripts" if self.windows else "bin")

    @property
    def python(self) -> Path:
        return self.bin_dir / ("python.exe" if self.windows else "python")

    def script(self, name: str) -> Path:
        """A console script or executable the env installs (`pip`, `spacy`)."""
        return self.bin_dir / (f"{name}.exe" if self.windows and "." not in name else name)

    # nlpsetup's own files in its root
    manifest_path = _InRoot(MANIFEST)
    marker_path = _InRoot(MARKER)
    constraints_path = _InRoot(CONSTRAINTS)
    lock_path = _InRoot(LOCK)
    verified_path = _InRoot(VERIFIED)

    def mark(self, **facts) -> None:
        import json

        self.marker_path.write_text(json.dumps({"created_by": "nlpsetup", **facts}) + "\n", encoding="utf-8")

    def built_by_nlpsetup(self) -> bool:
        """Whether nlpsetup made this folder (its marker, or the manifest of a finished install); a
        symlink is never taken as ours, whatever it points at."""
        if self.path.is_symlink():
            return False
        return self.marker_path.is_file() or self.manifest_path.is_file()

    def site_packages(self) -> list[Path]:
        if self.windows:
            return [p for p in [self.path / "Lib" / "site-packages"] if p.is_dir()]
        return sorted(self.path.glob("lib/python*/site-packages"))

    def activate_command(self, environ=None) -> str:
        """How to activate the env in the user's shell: on Windows PowerShell's and cmd's scripts
        (which one is running cannot be told from the environment), else by $SHELL's name."""
        environ = os.environ if environ is None else environ
        # virtualenv and uv write activate.ps1, `python -m venv` Activate.ps1.
        ps1 = next((self.bin_dir / n for n in ("Activate.ps1", "activate.ps1") if (self.bin_dir / n).exists()),
                   self.bin_dir / "Activate.ps1")
        if self.windows:
            return f"{ps1}  (PowerShell)  or  {self.bin_dir / 'activate.bat'}  (cmd)"
        shell = Path(environ.get("SHELL", "")).name
        if shell == "pwsh":
            return f"& {ps1}"
        if shell == "nu":
            return f"overlay use {self.bin_dir / 'activate.nu'}"
        script = {"fish": "activate.fish", "csh": "activate.csh", "tcsh": "activate.csh"}.get(shell, "activate")
        return f"source {self.bin_dir / script}"

    def activation(self) -> dict[str, str]:
        """What being active adds to a command's environment, for `proc.child_env(venv=...)`: its
        VIRTUAL_ENV, and under PATH its own folder, which goes before the inherited PATH."""
        return {"VIRTUAL_ENV": str(self.path), "PATH": str(self.bin_dir)}

    def environ(self) -> dict[str, str]:
        """The environment of a command run "with the env active" (PATH and VIRTUAL_ENV set)."""
        from nlpsetup.base import proc

        return proc.child_env(venv=self.activation(), base=os.environ)

    def command(self, argv) -> tuple[list[str], dict[str, str]]:
        """A command as `nlpsetup run` starts it: the env's own executable first, then PATH's."""
        import shutil

        from nlpsetup.base.errors import NlpsetupError

        if not argv:
            raise NlpsetupError("name a command to run", hint=f"for example: nlpsetup run {self.name} -- python")
        environ = self.environ()
        exe = shutil.which(argv[0], path=environ["PATH"])
        if exe is None:
            raise NlpsetupError(f"{argv[0]}: command not found in env {self.name} or on PATH",
                                hint=f"see what the env has: ls {self.bin_dir}")
        return [exe, *argv[1:]], environ

    def is_venv(self) -> bool:
        """Whether the folder looks like a Python env at all (any tool's)."""
        return (self.path / "pyvenv.cfg").exists() or (self.path / "conda-meta").is_dir()

    # --- creation -----------------------------------------------------------------------------

    def create_argv(self, method: str, interpreter: str, *, uv: str | None = None, conda: str = "conda",
                    conda_args: tuple[str, ...] = ()) -> list[str]:
        """The command that creates this env.

        virtualenv runs as a child of nlpsetup's own interpreter, not in-process, so that it has a
        time limit and can be stopped like every other step; Pythons older than virtualenv supports
        use their own `-m venv`; the uv runner uses `uv venv`; conda brings its own Python."""
        target = str(self.path)
        if method == "virtualenv":
            return [sys.executable, "-m", "virtualenv", "--quiet", "--no-periodic-update", "--python",
                    interpreter, target]
        if method == "venv":
            return [interpreter, "-m", "venv", target]
        if method == "uv":
            if uv is None:
                raise ValueError("uv venv needs the uv executable")
            return [uv, "venv", "--quiet", "--python", interpreter, target]
        if method == "conda":
            return [conda, "create", "--yes", "--prefix", target, *conda_args]
        raise ValueError(f"unknown create method {method!r}")

    # --- read side ----------------------------------------------------------------------------

    def distributions(self) -> dict[str, str] | None:
        """Name -> version of every distribution in the env (dist-info and, in 3.6 envs, egg-info),
        read by importlib.metadata from the files: no interpreter starts. None when the env has
        no site-packages at all."""
        from importlib import metadata

        roots = self.site_packages()
        if not roots:
            return None
        found: dict[str, str] = {}
        for dist in metadata.distributions(path=[str(r) for r in roots]):
            try:
                name, version = dist.metadata["Name"], dist.version
            except (OSError, KeyError, TypeError):  # a half-written dist-info: skip it
                continue
            if name and version:
                found.setdefault(name, version)
        return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))

    def version_of(self, name: str) -> str | None:
        """The installed version of one distribution (only its own metadata is read), or None."""
        from importlib import metadata

        from packaging.utils import canonicalize_name

        roots = [str(r) for r in self.site_packages()]
        for dist in metadata.distributions(name=canonicalize_name(name), path=roots) if roots else ():
            try:
                return dist.version
            except (OSError, KeyError, TypeError):
                continue
        return None

    def size_bytes(self) -> int:
        """Bytes on disk, counting hard-linked files once (as du does): uv links files from its cache."""
        return tree_bytes([self.path]) or 0


def tree_bytes(folders, deadline: float = float("inf")) -> int | None:
    """Bytes on disk under the folders, each inode once (as du counts); None when the walk passes
    `deadline` (a time.monotonic() value)."""
    import time

    seen: set[tuple[int, int]] = set()
    total = 0
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            if time.monotonic() > deadline:
                return None
            for name in files + dirs:
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def interpreter_runs(python: str) -> bool:
    """Whether an interpreter still starts (its base Python may have been removed or upgraded)."""
    from nlpsetup.base import proc

    if not os.path.exists(python):
        return False
    code, _ = proc.capture([python, "-I", "-c", "pass"], env=proc.child_env(), timeout=30)
    return code == 0
