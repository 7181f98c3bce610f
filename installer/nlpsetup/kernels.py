"""Jupyter kernelspecs for envs: `nlpsetup-ENV` in the user's Jupyter data folder.

The folder follows jupyter_core.paths.jupyter_data_dir() exactly (JUPYTER_DATA_DIR, then
JUPYTER_PLATFORM_DIRS via platformdirs, then macOS ~/Library/Jupyter, Windows %APPDATA%\\jupyter,
else $XDG_DATA_HOME/jupyter or ~/.local/share/jupyter), so that Jupyter started from any env
finds the kernel without nlpsetup depending on jupyter_core. Each kernel.json carries
`metadata.nlpsetup` naming its env, which is how removal and doctor know a spec is nlpsetup's.
"""

from __future__ import annotations

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


def write(env_name: str, env_path: Path, data: dict, main: str | None = None) -> Path:
    """Write (or rewrite) the env's kernelspec; returns its folder."""
    from nlpsetup.files import write_json_atomic

    folder = spec_dir(env_name)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "kernel.json", spec(env_name, env_path, data, main))
    return folder


def _ours(folder: Path) -> dict | None:
    """metadata.nlpsetup of a kernelspec nlpsetup wrote, else None (not ours: never touched)."""
    from nlpsetup.files import MAX_JSON_BYTES, read_regular

    try:  # read_regular: a FIFO kernel.json would block doctor forever
        meta = json.loads(read_regular(folder / "kernel.json", MAX_JSON_BYTES).decode("utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    mine = meta.get("nlpsetup") if isinstance(meta, dict) else None
    ok = isinstance(mine, dict) and isinstance(mine.get("env"), str) and isinstance(mine.get("path", ""), str)
    return mine if ok and mine["env"] else None


def remove(env_name: str) -> Path | None:
    """Remove the env's kernelspec if nlpsetup wrote it; returns the folder removed, if any."""
    folder = spec_dir(env_name)
    if _ours(folder) is None:
        return None
    shutil.rmtree(folder)
    return folder


def orphans() -> list[tuple[str, Path]]:
    """(env name, spec folder) of nlpsetup's kernelspecs whose env folder is gone."""
    try:
        folders = sorted((data_dir() / "kernels").glob(f"{PREFIX}*"))
    except OSError:
        return []
    out = []
    for folder in folders:
        mine = _ours(folder)
        if mine is not None and not Path(mine.get("path", "")).is_dir():
            out.append((mine["env"], folder))
    return out
