"""Where nlpsetup keeps things: NLPSETUP_HOME (envs, logs, caches) and the recipe folders."""

from __future__ import annotations

import os
import re
from pathlib import Path

from nlpsetup.base.errors import EXIT_FAILED, NlpsetupError


def home(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if value := env.get("NLPSETUP_HOME"):
        return Path(value).expanduser().absolute()
    import platformdirs  # imported here: it is only needed when no NLPSETUP_HOME is set

    return Path(platformdirs.user_data_dir("nlpsetup", appauthor=False))


def checked_home(env: dict[str, str] | None = None) -> Path:
    """The home, made sure to be a writable directory; a clear error otherwise."""
    root = home(env)
    if root.exists() and not root.is_dir():
        raise NlpsetupError(
            f"NLPSETUP_HOME {root} is a file, not a directory",
            hint="point NLPSETUP_HOME at a directory (or unset it to use the default)",
        )
    # A home that cannot be written (a read-only disk, no permission) fails the operation (exit 1);
    # the user's input was fine and nothing in it was touched.
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NlpsetupError(
            f"cannot create NLPSETUP_HOME {root}: {exc.strerror}",
            hint="point NLPSETUP_HOME at a directory you can write to", exit_code=EXIT_FAILED,
        ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise NlpsetupError(
            f"NLPSETUP_HOME {root} is not writable",
            hint="point NLPSETUP_HOME at a directory you can write to", exit_code=EXIT_FAILED,
        )
    return root



def envs_dir(root: Path) -> Path:
    return root / "envs"


def logs_dir(root: Path) -> Path:
    return root / "logs"


def cache_dir(root: Path) -> Path:
    return root / "cache"


def locks_dir(root: Path) -> Path:
    return root / "locks"


def journal_dir(root: Path) -> Path:
    return root / "journal"


# The names of nlpsetup's own leftovers beside the envs in envs/: `.NAME.backup` (the old env during
# a reinstall), `.NAME.snapshot` (its copy being made by add or upgrade), `.NAME.trash-PID` (being deleted) and `NAME.failed` (--keep-failed;
# `NAME.failed-2`... where that name is taken by a folder nlpsetup did not make). No env may be
# named like one (check_env_name), so that cleaning them up can never take a user's env.
FAILED_SUFFIX = ".failed"
RESERVED_SUFFIXES = (FAILED_SUFFIX, ".backup")
TRASH_INFIX = ".trash-"
_FAILED = re.compile(r"(.+)\.failed(?:-[0-9]+)?", re.I)
# An env changed through a link (envs/x -> /other/x) is snapshotted beside its target, under
# names no home's envs/ uses for its own leftovers, so one home never takes another's backup.
LINKED_BACKUP, LINKED_SNAPSHOT = ".nlpsetup-backup", ".nlpsetup-snapshot"


def is_reserved(name: str) -> bool:
    """Whether an env name is one of nlpsetup's leftover names (`x.failed`, `x.failed-2`, `x.backup`)."""
    return _FAILED.fullmatch(name) is not None or name.lower().endswith(RESERVED_SUFFIXES)


def failed_name(env: str, n: int = 1) -> str:
    """Where --keep-failed keeps a failed env: `env.failed`, else `env.failed-2`, ..."""
    return f"{env}{FAILED_SUFFIX}" + (f"-{n}" if n > 1 else "")


def is_failed_name(name: str) -> bool:
    return not name.startswith(".") and _FAILED.fullmatch(name) is not None


def backup_name(env: str) -> str:
    return f".{env}.backup"


def snapshot_name(env: str) -> str:
    """A hard-linked copy of an env being made (add, upgrade), renamed to its backup once whole."""
    return f".{env}.snapshot"


def trash_name(env: str, pid: int) -> str:
    return f".{env}{TRASH_INFIX}{pid}"


def leftover_owner(name: str) -> str | None:
    """The env a leftover in envs/ belongs to (`.x.backup`, `.x.trash-12`, `x.failed` -> x); None
    for anything else."""
    if is_failed_name(name):
        return _FAILED.fullmatch(name).group(1)
    for suffix in (".backup", ".snapshot"):
        if name.startswith(".") and name.endswith(suffix):
            return name[1: -len(suffix)] or None
    if name.startswith(".") and TRASH_INFIX in name:  # the trash of an env, or of a backup or kept env
        owner, _, pid = name[1:].rpartition(TRASH_INFIX)
        for suffix in RESERVED_SUFFIXES:
            owner = owner.removesuffix(suffix)
        return owner if owner and pid.isdigit() else None
    return None


def builtin_recipes_dir() -> Path:
    """Recipes shipped in the wheel (nlpsetup/data/recipes), or the repository's recipes/ in a checkout."""
    packaged = Path(__file__).parents[1] / "data" / "recipes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "recipes"


def recipe_dirs(env: dict[str, str] | None = None) -> list[Path]:
    """Extra folders first: a recipe there overrides a built-in one of the same name; the recipes
    discovery wrote (NLPSETUP_HOME/recipes/discovered) come last, for tools no other recipe covers."""
    env = os.environ if env is None else env
    extra = [Path(p).expanduser() for p in env.get("NLPSETUP_RECIPES_PATH", "").split(os.pathsep) if p]
    return [*extra, builtin_recipes_dir(), discovered_recipes_dir(home(env))]


def discovered_recipes_dir(root: Path) -> Path:
    return root / "recipes" / "discovered"
