"""What an index publishes for one exact release: its files (wheels, sdists) with their sha256, read
from the project's PEP 691 JSON or PEP 503 HTML page, or from a find-links folder or page.

Locks take their hashes from here. The index's published digest of each file of `name==version` is
what pip and uv check a download against under `--require-hashes` (pip-tools' and uv's
`--generate-hashes` read the same pages), and it is the same for the pip and the uv backend. The
env's RECORD files hash the unpacked files, not the archive an installer verifies, and uv keeps no
record of which archive it fetched; so the index, asked for the exact release, is the sound source.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from nlpsetup.base import web
from nlpsetup.base.files import sha256_file

PYPI = "https://pypi.org/simple"
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_WORKERS = 8  # index pages fetched at once: one per distribution, network-bound


@dataclass(frozen=True)
class File:
    filename: str
    url: str  # as fetched: may carry credentials, so mask it before writing it anywhere
    sha256: str
    index: str  # the index (or find-links location) it was found on, raw
    upload_time: str | None = None  # PEP 700, where the index publishes it (PEP 691 JSON only)

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


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


def release_of(filename: str) -> tuple[str, Version] | None:
    """(canonical name, version) of a wheel or sdist file name, or None for anything else."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return name, version
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def _matches(filename: str, name: str, version: str) -> bool:
    found = release_of(filename)
    try:
        return found is not None and found[0] == canonicalize_name(name) and found[1] == Version(version)
    except InvalidVersion:
        return False


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")
            self.links.append((self._href or "", ""))

    def handle_data(self, data):
        if self._href is not None and self.links:
            href, text = self.links[-1]
            self.links[-1] = (href, text + data)

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None


def parse_page(body: bytes, content_type: str, page_url: str) -> list[tuple[str, str, str | None, str | None]]:
    """(filename, absolute url, sha256 or None, upload time or None) of every file a project page links."""
    out = []
    if "json" in content_type:
        doc = web.json_of(body, page_url)
        for f in doc.get("files", []) if isinstance(doc, dict) else []:
            if isinstance(f, dict) and isinstance(f.get("filename"), str) and isinstance(f.get("url"), str):
                digest = (f.get("hashes") or {}).get("sha256") if isinstance(f.get("hashes"), dict) else None
                uploaded = f.get("upload-time") if isinstance(f.get("upload-time"), str) else None
                out.append((f["filename"], urljoin(page_url, f["url"]), digest, uploaded))
        return out
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    for href, text in parser.links:
        url = urljoin(page_url, href)
        base, _, fragment = url.partition("#")
        filename = unquote(urlsplit(base).path.rsplit("/", 1)[-1]) or text.strip()
        digest = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
        out.append((filename, base, digest, None))  # PEP 503 HTML has no upload times
    return out



def _local_dir(location: str) -> Path | None:
    path = Path(unquote(urlsplit(location).path)) if location.startswith("file:") else Path(location)
    return path if "://" not in location or location.startswith("file:") else None


def files_on(location: str, name: str, version: str, *, index: bool) -> list[File]:
    """The files of `name==version` on one index (`index`) or one find-links location. A project
    the index does not have is no files; an index that cannot be reached raises web.FetchError."""
    if not index and (folder := _local_dir(location)) is not None and folder.is_dir():
        return [File(p.name, p.resolve().as_uri(), sha256_file(p), location)
                for p in sorted(folder.iterdir()) if p.is_file() and _matches(p.name, name, version)]
    url = f"{location.rstrip('/')}/{canonicalize_name(name)}/" if index else location
    try:
        body, content_type = web.get(url, accept=_ACCEPT, timeout=30)
    except web.FetchError as exc:
        text = str(exc)
        if ": HTTP 404" in text or ": HTTP 410" in text or "No such file" in text or "Not a directory" in text:
            return []
        raise
    files = []
    for filename, file_url, digest, uploaded in parse_page(body, content_type, url):
        if not _matches(filename, name, version):
            continue
        if digest is None and file_url.startswith("file:"):  # a local page without fragments: hash the file
            path = Path(unquote(urlsplit(file_url).path))
            digest = sha256_file(path) if path.is_file() else None
        if digest:
            files.append(File(filename, file_url, digest.lower(), location, uploaded))
    return files


def check_upload_times(index: str, name: str) -> str | None:
    """Why `index` cannot serve a cutoff (its page for `name` gives no PEP 700 upload times:
    PEP 503 HTML, or PEP 691 JSON without `upload-time`), or None when it can. A project the index
    does not have says nothing: the install itself will name it."""
    url = f"{index.rstrip('/')}/{canonicalize_name(name)}/"
    try:
        body, content_type = web.get(url, accept=_ACCEPT, timeout=30)
    except web.FetchError as exc:
        return None if (": HTTP 404" in str(exc) or "No such file" in str(exc)) else str(exc)
    if "json" not in content_type:
        return "it serves no PEP 691 JSON, so no PEP 700 upload times"
    try:
        files = parse_page(body, content_type, url)
    except ValueError:
        return "its PEP 691 JSON page cannot be read"
    if files and any(uploaded is None for *_, uploaded in files):
        return "its PEP 691 JSON gives no PEP 700 upload-time for its files"
    return None


def release_files(name: str, version: str, sources: Sources) -> list[File]:
    """Every file of `name==version` the sources publish, from the first index that has the release
    (the PyTorch family from the torch index first), plus what find-links hold."""
    from nlpsetup.recipes.model import TORCH_FAMILY

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
