"""Shell completion values: tool names (recipe file names, not parsed, so a Tab press stays fast)
and env names. click calls these with (ctx, param, incomplete) while the shell asks."""

from __future__ import annotations


def tool_names(ctx=None, param=None, incomplete: str = "") -> list[str]:
    from nlpsetup.base import paths

    names: set[str] = set()
    for folder in paths.recipe_dirs():
        try:
            names.update(p.stem for p in folder.glob("*.toml") if p.stem != "recipe.schema")
        except OSError:
            continue
    return sorted(n for n in names if n.startswith(incomplete))


def env_names(ctx=None, param=None, incomplete: str = "") -> list[str]:
    from nlpsetup.base import paths
    from nlpsetup.envs.store import EnvStore

    try:
        names = EnvStore(paths.home()).names()
    except Exception:  # noqa: BLE001 - a completion must never print a traceback into the prompt
        return []
    return [n for n in names if n.startswith(incomplete)]


def tools_and_envs(ctx=None, param=None, incomplete: str = "") -> list[str]:
    return sorted(set(tool_names(ctx, param, incomplete)) | set(env_names(ctx, param, incomplete)))
