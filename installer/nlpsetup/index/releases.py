"""What an index publishes for one exact release: its files (wheels, sdists) with their sha256, read
from the project's page (`index.pages`) or from a find-links folder or page, and whether an index
gives the upload times a cutoff needs.

Locks take their hashes from here. The index's published digest of each file of `name==version` is
what pip and uv check a download against under `--require-hashes` (pip-tools' and uv's
`--generate-hashes` read the same pages), and it is the same for the pip and the uv backend. The
env's RECORD files hash the unpacked files, not the archive an installer verifies, and uv keeps no
record of which archive it fetched; so the index, asked for the exact release, is the sound source.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nlpsetup.base import web
from nlpsetup.base.files import sha256_file
from nlpsetup.index.pages import PYPI, File, fetch, project_url, release_of
from nlpsetup.recipes.model import TORCH_FAMILY

_WORKERS = 8  # index pages fetched at once: one per distribution, network-bound


@dataclass(frozen=True)
class Sources:
    """Where to look, in pip's order: the torch index first for the PyTorch family, then the index
    and the extra indexes, then find-links."""

    indexes: tuple[str, ...] = (PYPI,)
    find_links: tuple[str, ...] = ()
    torch_index: str | None = None

    @classmethod
    def from_settings(cls, index, torch_index: str | None = None) -> Sources:
        return cls((index.index_url or PYPI, *index.extra_index_urls), tuple(index.find_links), torch_index)


def _matches(filename: str, name: str, version: str) -> bool:
    found = release_of(filename)
    try:
        return found is not None and found[0] == canonicalize_name(name) and found[1] == Version(version)
    except InvalidVersion:
        return False


def _local_dir(location: str) -> Path | None:
    path = Path(unquote(urlsplit(location).path)) if location.startswith("file:") else Path(location)
    return path if "://" not in location or location.startswith("file:") else None


def files_on(location: str, name: str, version: str, *, index: bool) -> list[File]:
    """The files of `name==version` on one index (`index`) or one find-links location. A project
    the index does not have is no files; an index that cannot be reached raises web.FetchError."""
    if not index and (folder := _local_dir(location)) is not None and folder.is_dir():
        return [File(p.name, p.resolve().as_uri(), sha256_file(p), location)
                for p in sorted(folder.iterdir()) if p.is_file() and _matches(p.name, name, version)]
    try:
        page = fetch(project_url(location, name) if index else location, timeout=30)
    except web.FetchError as exc:
        text = str(exc)
        if ": HTTP 404" in text or ": HTTP 410" in text or "No such file" in text or "Not a directory" in text:
            return []
        raise
    files = []
    for f in page.files():
        if not _matches(f.filename, name, version):
            continue
        digest = f.sha256
        if digest is None and f.url.startswith("file:"):  # a local page without fragments: hash the file
            path = Path(unquote(urlsplit(f.url).path))
            digest = sha256_file(path) if path.is_file() else None
        if digest:
            files.append(replace(f, sha256=digest.lower(), index=location))
    return files


def check_upload_times(index: str, name: str) -> str | None:
    """Why `index` cannot serve a cutoff (its page for `name` gives no PEP 700 upload times:
    PEP 503 HTML, or PEP 691 JSON without `upload-time`), or None when it can. A project the index
    does not have says nothing: the install itself will name it."""
    try:
        page = fetch(project_url(index, name), timeout=30)
    except web.FetchError as exc:
        return None if (": HTTP 404" in str(exc) or "No such file" in str(exc)) else str(exc)
    if not page.is_json:
        return "it serves no PEP 691 JSON, so no PEP 700 upload times"
    try:
        files = page.files()
    except ValueError:
        return "its PEP 691 JSON page cannot be read"
    if files and any(f.upload_time is None for f in files):
        return "its PEP 691 JSON gives no PEP 700 upload-time for its files"
    return None


def release_files(name: str, version: str, sources: Sources) -> list[File]:
    """Every file of `name==version` the sources publish, from the first index that has the release
    (the PyTorch family from the torch index first), plus what find-links hold."""
    indexes = list(sources.indexes)
    if sources.torch_index and canonicalize_name(name) in TORCH_FAMILY:
        indexes.insert(0, sources.torch_index)
    found: list[File] = []
    for location in indexes:
        if found := files_on(location, name, version, index=True):
            break
    for location in sources.find_links:
        found += files_on(location, name, version, index=False)
    return found


def lookup(dists: dict[str, str], sources: Sources) -> tuple[dict[str, list[File]], dict[str, str]]:
    """(files per name, error per name) for every name==version, asked of the sources at once."""
    def one(item):
        name, version = item
        try:
            return name, release_files(name, version, sources), None
        except (web.FetchError, OSError, ValueError) as exc:
            return name, [], str(exc)

    files: dict[str, list[File]] = {}
    errors: dict[str, str] = {}
    workers = max(1, min(_WORKERS, len(dists), (os.cpu_count() or 1) * 4))
    with ThreadPoolExecutor(workers) as pool:
        for name, found, error in pool.map(one, dists.items()):
            files[name] = found
            if error:
                errors[name] = error
    return files, errors
