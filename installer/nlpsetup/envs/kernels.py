"""Jupyter kernelspecs for envs: `nlpsetup-ENV` in the user's Jupyter data folder.

The folder follows jupyter_core.paths.jupyter_data_dir() exactly (JUPYTER_DATA_DIR, then
JUPYTER_PLATFORM_DIRS via platformdirs, then macOS ~/Library/Jupyter, Windows %APPDATA%\\jupyter,
else $XDG_DATA_HOME/jupyter or ~/.local/share/jupyter), so that Jupyter started from any env
finds the kernel without nlpsetup depending on jupyter_core. Each kernel.json carries
`metadata.nlpsetup` naming its env and its path, which is how removal and doctor know a spec is
nlpsetup's. The folder is shared by every NLPSETUP_HOME: a spec belongs to the env whose path it
records, and nlpsetup rewrites or removes only its own env's; where another env's spec holds
`nlpsetup-ENV`, this env's is `nlpsetup-ENV-HASH` (a short hash of the env's path).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

PREFIX = "nlpsetup-"


def data_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """Jupyter's per-user data folder, by jupyter_core's own rules (jupyter_core/paths.py)."""
    env = os.environ if environ is None else environ
    platform = platform or sys.platform
    if env.get("JUPYTER_DATA_DIR"):
        return Path(env["JUPYTER_DATA_DIR"])
    if env.get("JUPYTER_PLATFORM_DIRS", "0").lower() not in ("no", "n", "false", "off", "0", "0.0"):
        import platformdirs

        return Path(platformdirs.user_data_dir("jupyter", appauthor=False))
    home = Path(os.path.realpath(os.path.expanduser("~")))
    if platform == "darwin":
        return home / "Library" / "Jupyter"
    if platform == "win32":
        if env.get("APPDATA"):
            return Path(env["APPDATA"], "jupyter")
        return Path(env.get("JUPYTER_CONFIG_DIR") or home / ".jupyter", "data")
    return Path(env.get("XDG_DATA_HOME") or home / ".local" / "share", "jupyter")


def spec_dir(env_name: str, environ: Mapping[str, str] | None = None) -> Path:
    return data_dir(environ) / "kernels" / f"{PREFIX}{env_name}"


def display_name(env_name: str, data: dict, main: str | None = None) -> str:
    """"ENV (TOOL VERSION, Python X.Y)" from the env's manifest; VERSION is the installed version
    of the tool's main distribution (`main`, from its recipe), else of the distribution named as
    the tool, else the variant."""
    tool = (data.get("tools") or [{}])[0]
    name = tool.get("name", env_name)
    dists = {canonicalize_name(k): v for k, v in data.get("distributions", {}).items()}
    version = dists.get(canonicalize_name(main or name)) or dists.get(canonicalize_name(name)) or tool.get("variant", "?")
    py = ".".join(str(data.get("interpreter", {}).get("version", "?")).split(".")[:2])
    return f"{env_name} ({name} {version}, Python {py})"


def spec(env_name: str, env_path: Path, data: dict, main: str | None = None) -> dict:
    env_python = data.get("interpreter", {}).get("env_python")
    return {
        "argv": [env_python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name(env_name, data, main),
        "language": "python",
        "metadata": {"debugger": True, "nlpsetup": {"env": env_name, "path": str(env_path)}},
    }


def recorded_path(folder: Path) -> str | None:
    """The env path a kernelspec records (metadata.nlpsetup.path), if it is one of nlpsetup's."""
    mine = _ours(folder)
    path = mine.get("path") if mine else None
    return path if isinstance(path, str) and path else None


def _same_env(recorded: str, env_path: Path) -> bool:
    return os.path.abspath(recorded) == os.path.abspath(env_path) or \
        os.path.realpath(recorded) == os.path.realpath(env_path)


def _candidates(env_name: str, env_path: Path) -> list[Path]:
    tag = hashlib.sha256(os.path.abspath(env_path).encode()).hexdigest()[:8]
    kernels = data_dir() / "kernels"
    return [kernels / f"{PREFIX}{env_name}", kernels / f"{PREFIX}{env_name}-{tag}"]


def own_dir(env_name: str, env_path: Path) -> Path | None:
    """Where this env's kernelspec is or may be written: the first candidate folder that is free or
    records this env's path; None when another env's spec (or a folder not nlpsetup's) holds each."""
    for folder in _candidates(env_name, env_path):
        if not folder.exists() and not folder.is_symlink():
            return folder
        recorded = recorded_path(folder)
        if recorded is not None and _same_env(recorded, env_path) and not folder.is_symlink():
            return folder
    return None


def write(env_name: str, env_path: Path, data: dict, main: str | None = None) -> Path:
    """Write (or rewrite) the env's kernelspec; returns its folder."""
    from nlpsetup.base.errors import NlpsetupError
    from nlpsetup.base.files import write_json_atomic

    folder = own_dir(env_name, env_path)
    if folder is None:
        taken = _candidates(env_name, env_path)
        raise NlpsetupError(f"the kernelspecs {', '.join(f.name for f in taken)} belong to other envs "
                            f"({', '.join(recorded_path(f) or 'not nlpsetup' for f in taken)}); none was changed",
                            hint=f"remove the one no longer wanted (rm -r {taken[0]}), then run this again")
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "kernel.json", spec(env_name, env_path, data, main))
    return folder


def _ours(folder: Path) -> dict | None:
    """metadata.nlpsetup of a kernelspec nlpsetup wrote, else None (not ours: never touched)."""
    from nlpsetup.base.files import MAX_JSON_BYTES, NotAFile, read_regular

    try:  # read_regular: a FIFO kernel.json would block doctor forever
        meta = json.loads(read_regular(folder / "kernel.json", MAX_JSON_BYTES).decode("utf-8")).get("metadata", {})
    except (OSError, NotAFile, ValueError, AttributeError, RecursionError):
        return None
    mine = meta.get("nlpsetup") if isinstance(meta, dict) else None
    ok = isinstance(mine, dict) and isinstance(mine.get("env"), str) and isinstance(mine.get("path", ""), str)
    return mine if ok and mine["env"] else None


def has(env_name: str, env_path: Path) -> bool:
    """Whether nlpsetup wrote a kernelspec for this env (one that records its path)."""
    folder = own_dir(env_name, env_path)
    return folder is not None and _ours(folder) is not None


def remove(env_name: str, env_path: Path) -> Path | None:
    """Remove this env's kernelspec: only one that records this env's path (another home's env of
    the same name has its own); returns the folder removed, if any."""
    for folder in _candidates(env_name, env_path):
        recorded = recorded_path(folder)
        if recorded is not None and _same_env(recorded, env_path) and not folder.is_symlink():
            shutil.rmtree(folder)
            return folder
    return None


def orphans() -> list[tuple[str, Path]]:
    """(env name, spec folder) of nlpsetup's kernelspecs whose env folder is gone."""
    try:
        folders = sorted((data_dir() / "kernels").glob(f"{PREFIX}*"))
    except OSError:
        return []
    out = []
    for folder in folders:
        mine, path = _ours(folder), recorded_path(folder)
        if mine is not None and not (path and Path(path).is_dir()):
            out.append((mine["env"], folder))
    return out
