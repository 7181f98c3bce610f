"""`nlpsetup recipe outdated`: releases on the index newer than a recipe knows.

Versions come from the index's project page and dependencies from the wheel's own METADATA, both
read through `index` (`pages.published`, `metadata.wheel_metadata`); this module decides only which
pins are outdated."""

from __future__ import annotations

import zipfile

from packaging.utils import canonicalize_name

from nlpsetup.base import web
from nlpsetup.base.redact import mask_text
from nlpsetup.index.metadata import wheel_metadata
from nlpsetup.index.pages import PYPI, published
from nlpsetup.recipes.model import Recipe


def check(recipe: Recipe, index_url: str) -> list[dict]:
    """For each distinct main package: the newest release and whether a variant covers it; a
    package that cannot be checked gets a row with its `error` (and `recipe outdated` exits 1)."""
    rows = []
    seen = set()
    for v in recipe.variants:
        pkg = canonicalize_name(v.main)
        if pkg in seen:
            continue
        seen.add(pkg)
        specs = [x.main_requirement.specifier for x in recipe.variants if canonicalize_name(x.main) == pkg]
        try:
            rows.append({"tool": recipe.name, "package": pkg, **_newest(index_url, pkg, specs)})
        except (web.FetchError, OSError, ValueError, LookupError, TypeError, AttributeError, StopIteration,
                zipfile.BadZipFile) as exc:  # unreachable, no such project, a bad page, a broken wheel
            rows.append({"tool": recipe.name, "package": pkg, "error": mask_text(str(exc)) or type(exc).__name__})
    return rows


def _newest(index_url: str, pkg: str, specs) -> dict:
    found = [f for f in published(index_url, pkg) if not f.version.is_prerelease]
    if not found:
        raise LookupError("no releases on the index")
    newest = max(f.version for f in found)
    covered = any(s.contains(newest, prereleases=True) for s in specs)
    known = sorted({f.version for f in found if any(s.contains(f.version, prereleases=True) for s in specs)})
    wheel = next((f for f in found if f.version == newest and f.filename.endswith(".whl")), None)
    meta = wheel_metadata(wheel) if wheel else {}
    return {
        "newest": str(newest), "newest_known": str(known[-1]) if known else None, "covered": covered,
        "requires_python": meta.get("requires_python"), "requires_dist": meta.get("requires_dist", []),
        "metadata_from": "wheel METADATA" if meta else "none (sdist only)",
    }


def check_all(recipes: list[Recipe], index_url: str | None = None) -> list[dict]:
    """check() for each recipe, against --index-url, else pip's configured index, else PyPI."""
    import os

    from nlpsetup.facts.host import pip_index_settings

    index = index_url or pip_index_settings(dict(os.environ)).index_url or PYPI
    return [row for r in recipes for row in check(r, index)]
