"""Tiny wheels and a local PEP 503 "simple" index, built at test time, so tests can run real
`pip install` / `uv pip install` commands fast and offline.

Standard library only. The wheels are tagged `py3-none-any` with Metadata-Version 2.1 and no
Requires-Python, and their module code avoids newer syntax, so they install on Python 3.6+.

    build_wheel(dest, name, version, files=..., requires=..., entry_points=..., extras=...) -> Path
    build_sdist_that_fails(dest, name, version, message) -> Path
    write_simple_index(root, dists) -> "file:///.../simple"
    standard_index(root, torch_index=False) -> "file:///.../simple"
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import io
import re
import shutil
import tarfile
import textwrap
import zipfile
from pathlib import Path
from urllib.parse import quote

from nlpsetup.base.files import sha256_file

__all__ = [
    "build_wheel",
    "build_sdist_that_fails",
    "write_simple_index",
    "standard_index",
    "normalize",
    "TORCH_CUDA_VERSION",
    "TORCH_CPU_VERSION",
    "BUILDFAILS_MESSAGE",
    "BROKENIMPORT_MESSAGE",
]

# Fixed timestamp so the same inputs give byte-identical archives (and hashes).
_EPOCH = (2020, 1, 1, 0, 0, 0)
_EPOCH_TS = 1577836800

TORCH_CUDA_VERSION = "2.13.0"
TORCH_CPU_VERSION = "2.13.0+cpu"
BUILDFAILS_MESSAGE = "buildfails: error: command 'gcc' failed: No such file or directory"
BROKENIMPORT_MESSAGE = "brokenimport needs libfoo.so.1"


def normalize(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _filename_name(name: str) -> str:
    """The distribution name as it appears in wheel / sdist file names and .dist-info folders."""
    return normalize(name).replace("-", "_")


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _as_bytes(content) -> bytes:
    return content if isinstance(content, bytes) else content.encode("utf-8")


def _zip_write(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def build_wheel(dest: Path, name: str, version: str, *, files: dict[str, str],
                requires: list[str] = (), entry_points: dict[str, str] | None = None,
                extras: dict[str, list[str]] | None = None, description: str = "") -> Path:
    """Build `<name>-<version>-py3-none-any.whl` in `dest` and return its path.

    `files` maps paths inside the wheel (e.g. "pkg/__init__.py") to their text; `requires` become
    Requires-Dist lines; `entry_points` maps console-script names to "module:function"; `extras`
    maps an extra's name to what it requires (Provides-Extra and `; extra == ...` lines);
    `description` is METADATA's body (a README, as markdown).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    fname = _filename_name(name)
    dist_info = f"{fname}-{version}.dist-info"

    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: Tiny test distribution {name} {version}",
    ]
    metadata += [f"Requires-Dist: {req}" for req in requires]
    for extra, reqs in (extras or {}).items():
        metadata += [f"Provides-Extra: {extra}", *(f"Requires-Dist: {req} ; extra == '{extra}'" for req in reqs)]
    wheel_meta = "\n".join([
        "Wheel-Version: 1.0",
        "Generator: nlpsetup-tests-wheelhouse",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    ]) + "\n"

    contents: list[tuple[str, bytes]] = []
    for path, text in files.items():
        path = path.replace("\\", "/").lstrip("/")
        if path.startswith(dist_info + "/"):
            raise ValueError(f"{path}: files may not write into {dist_info}")
        contents.append((path, _as_bytes(text)))
    contents.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n\n" + description).encode("utf-8")))
    contents.append((f"{dist_info}/WHEEL", wheel_meta.encode("utf-8")))
    if entry_points:
        lines = ["[console_scripts]"] + [f"{script} = {target}" for script, target in entry_points.items()]
        contents.append((f"{dist_info}/entry_points.txt", ("\n".join(lines) + "\n").encode("utf-8")))
    contents.append((f"{dist_info}/top_level.txt",
                     ("\n".join(sorted({p.split("/")[0].removesuffix(".py") for p, _ in contents
                                        if not p.startswith(dist_info)})) + "\n").encode("utf-8")))

    record_path = f"{dist_info}/RECORD"
    record_lines = [f"{path},{_record_hash(data)},{len(data)}" for path, data in contents]
    record_lines.append(f"{record_path},,")
    contents.append((record_path, ("\n".join(record_lines) + "\n").encode("utf-8")))

    wheel_path = dest / f"{fname}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel_path, "w") as zf:
        for path, data in contents:
            _zip_write(zf, path, data)
    return wheel_path


# The sdist carries a setup.py that fails with the message, plus a pyproject.toml naming an in-tree
# build backend (no build requirements) that runs that setup.py. Without the in-tree backend, pip's
# build isolation would first try to fetch setuptools from the (offline, setuptools-less) index and
# fail with "No matching distribution found for setuptools" instead of the intended message. Old
# pips that predate PEP 517 run setup.py directly and fail the same way.
_FAILING_SETUP_PY = """\
MESSAGE = {message!r}
raise SystemExit(MESSAGE)  # prints MESSAGE to stderr, exit status 1
"""

_FAILING_BACKEND = """\
\"\"\"In-tree PEP 517 backend: every hook runs setup.py, which fails.\"\"\"
import os
import runpy


def _run_setup_py(*args, **kwargs):
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "setup.py"),
                   run_name="__main__")
    raise RuntimeError("setup.py was expected to fail")


get_requires_for_build_wheel = _run_setup_py
get_requires_for_build_sdist = _run_setup_py
get_requires_for_build_editable = _run_setup_py
prepare_metadata_for_build_wheel = _run_setup_py
prepare_metadata_for_build_editable = _run_setup_py
build_wheel = _run_setup_py
build_sdist = _run_setup_py
build_editable = _run_setup_py
"""

_FAILING_PYPROJECT = """\
[build-system]
requires = []
build-backend = "_failing_backend"
backend-path = ["."]
"""


def build_sdist_that_fails(dest: Path, name: str, version: str, message: str,
                           setup_py: str | None = None) -> Path:
    """Build `<name>-<version>.tar.gz` in `dest`; building it (pip, uv) fails with `message`
    (or runs `setup_py` instead, e.g. one that hangs)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = f"{_filename_name(name)}-{version}"
    members = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                    f"Summary: Test sdist that fails to build\n\n",
        "setup.py": setup_py if setup_py is not None else _FAILING_SETUP_PY.format(message=message),
        "pyproject.toml": _FAILING_PYPROJECT,
        "_failing_backend.py": _FAILING_BACKEND,
    }
    sdist_path = dest / f"{base}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dir_info = tarfile.TarInfo(base)
        dir_info.type = tarfile.DIRTYPE
        dir_info.mode = 0o755
        dir_info.mtime = _EPOCH_TS
        tf.addfile(dir_info)
        for rel, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = _EPOCH_TS
            tf.addfile(info, io.BytesIO(data))
    with open(sdist_path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=_EPOCH_TS,
                                                     filename="") as gz:
        gz.write(raw.getvalue())
    return sdist_path


_BUILT_AGAINST_BACKEND = """\
\"\"\"In-tree PEP 517 backend: the wheel records the version of LIB it was built with.\"\"\"
import base64
import hashlib
import os
import zipfile

NAME, VERSION, LIB = {name!r}, {version!r}, {lib!r}
INFO = NAME + "-" + VERSION + ".dist-info"


def _files():
    lib = __import__(LIB)
    return {{NAME + "/__init__.py": "BUILT_WITH = %r\\n" % lib.VERSION,
            INFO + "/METADATA": "Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\nRequires-Dist: %s\\n" % (NAME, VERSION, LIB),
            INFO + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}}


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    os.makedirs(os.path.join(metadata_directory, INFO))
    for name, text in _files().items():
        if name.startswith(INFO):
            with open(os.path.join(metadata_directory, name), "w") as f:
                f.write(text)
    return INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    path = os.path.join(wheel_directory, NAME + "-" + VERSION + "-py3-none-any.whl")
    record = []
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in _files().items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            zf.writestr(name, data)
            record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
        zf.writestr(INFO + "/RECORD", "\\n".join(record + [INFO + "/RECORD,,"]) + "\\n")
    return os.path.basename(path)


def build_sdist(sdist_directory, config_settings=None):
    raise RuntimeError("not for this test")
"""


def build_sdist_built_against(dest: Path, name: str, version: str, lib: str) -> Path:
    """`<name>-<version>.tar.gz` whose build needs `lib` (a stand-in for numpy) and whose wheel
    records `lib.VERSION` at build time as `name.BUILT_WITH`: built against one version, run with another."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = f"{_filename_name(name)}-{version}"
    members = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Dist: {lib}\n\n",
        "pyproject.toml": f'[build-system]\nrequires = ["{lib}"]\nbuild-backend = "_backend"\nbackend-path = ["."]\n',
        "_backend.py": _BUILT_AGAINST_BACKEND.format(name=name, version=version, lib=lib),
    }
    sdist_path = dest / f"{base}.tar.gz"
    with tarfile.open(sdist_path, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for rel, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size, info.mode, info.mtime = len(data), 0o644, _EPOCH_TS
            tf.addfile(info, io.BytesIO(data))
    return sdist_path


def _project_of(dist: Path) -> str:
    """Project name of a wheel or sdist file, normalized."""
    fname = dist.name
    if fname.endswith(".whl"):
        return normalize(fname.split("-")[0])
    for ext in (".tar.gz", ".zip", ".tar.bz2"):
        if fname.endswith(ext):
            stem = fname[: -len(ext)]
            return normalize(stem.rsplit("-", 1)[0])
    raise ValueError(f"not a wheel or sdist: {dist}")


def write_simple_index(root: Path, dists: list[Path]) -> str:
    """Write a PEP 503 index for `dists` under `root` and return the file:// URL of root/simple/.

    Files are copied into root/files/ (unless already there); root/simple/index.html lists the
    projects and root/simple/<normalized-name>/index.html links each file with its sha256.
    """
    root = Path(root).resolve()
    files_dir = root / "files"
    simple = root / "simple"
    files_dir.mkdir(parents=True, exist_ok=True)
    simple.mkdir(parents=True, exist_ok=True)

    projects: dict[str, list[Path]] = {}
    for dist in dists:
        dist = Path(dist).resolve()
        target = files_dir / dist.name
        if dist != target:
            shutil.copyfile(dist, target)
        projects.setdefault(_project_of(target), []).append(target)

    links = "\n".join(f'    <a href="{quote(p)}/">{html.escape(p)}</a><br/>' for p in sorted(projects))
    (simple / "index.html").write_text(
        "<!DOCTYPE html>\n<html>\n  <head><title>Simple index</title></head>\n  <body>\n"
        f"{links}\n  </body>\n</html>\n", encoding="utf-8")

    for project, paths in projects.items():
        page_dir = simple / project
        page_dir.mkdir(parents=True, exist_ok=True)
        anchors = "\n".join(
            f'    <a href="../../files/{quote(p.name)}#sha256={sha256_file(p)}">'
            f'{html.escape(p.name)}</a><br/>'
            for p in sorted(set(paths), key=lambda p: p.name))
        title = f"Links for {html.escape(project)}"
        (page_dir / "index.html").write_text(
            f"<!DOCTYPE html>\n<html>\n  <head><title>{title}</title></head>\n  <body>\n"
            f"    <h1>{title}</h1>\n{anchors}\n  </body>\n</html>\n", encoding="utf-8")

    return simple.as_uri()


# ---------------------------------------------------------------- the standard set

def _nlpdemo_files(version: str) -> dict[str, str]:
    return {
        "nlpdemo/__init__.py": textwrap.dedent(f"""\
            __version__ = {version!r}


            def tokens(s):
                return s.split()
            """),
        "nlpdemo/cli.py": textwrap.dedent(f"""\
            import sys

            USAGE = "usage: nlpdemo [--version] [--help] [TEXT ...]"


            def main(argv=None):
                args = sys.argv[1:] if argv is None else list(argv)
                if "--version" in args:
                    print("nlpdemo {version}")
                    return 0
                if not args or "--help" in args or "-h" in args:
                    print(USAGE)
                    return 0
                from nlpdemo import tokens
                print(" ".join(tokens(" ".join(args))))
                return 0


            if __name__ == "__main__":
                sys.exit(main())
            """),
    }


def _torch_files(version: str, cuda: bool) -> dict[str, str]:
    body = f"__version__ = {version!r}\n"
    if cuda:
        body += "cuda = True\n"
    body += "\n\ndef ones(n):\n    return [1.0] * n\n"
    return {"torch/__init__.py": body}


_SLEEPY = """\
import os
import time

time.sleep(float(os.environ.get("SLEEPY_IMPORT_SECONDS", "0")))


def nap(seconds):
    time.sleep(seconds)
"""

_CACHE: dict[tuple[Path, bool], str] = {}


def standard_index(root: Path, torch_index: bool = False) -> str:
    """Build the standard set of test distributions under `root` and return an index URL.

    `root/main` holds everything (with the "cuda" torch 2.13.0, as on PyPI); `root/torch-cpu` holds
    only torch 2.13.0+cpu (as on PyTorch's CPU index). Returns the main index URL, or with
    `torch_index=True` the CPU torch index URL. Both are built on the first call for a root and the
    URLs are cached for the rest of the process.
    """
    root = Path(root).resolve()
    key = (root, torch_index)
    if key not in _CACHE:
        main_url, torch_url = _build_standard(root)
        _CACHE[(root, False)] = main_url
        _CACHE[(root, True)] = torch_url
    return _CACHE[key]


def _build_standard(root: Path) -> tuple[str, str]:
    build = root / "build"
    if build.exists():
        shutil.rmtree(build)
    main: list[Path] = []

    main.append(build_wheel(build, "torch", TORCH_CUDA_VERSION,
                            files=_torch_files(TORCH_CUDA_VERSION, cuda=True)))
    torch_cpu = build_wheel(build / "torch-cpu", "torch", TORCH_CPU_VERSION,
                            files=_torch_files(TORCH_CPU_VERSION, cuda=False))
    for version in ("1.0.0", "0.9.0"):
        main.append(build_wheel(build, "nlpdemo", version, files=_nlpdemo_files(version),
                                requires=["torch>=2.0"], entry_points={"nlpdemo": "nlpdemo.cli:main"}))
    main.append(build_wheel(build, "brokenimport", "1.0.0", files={
        "brokenimport/__init__.py": f"raise ImportError({BROKENIMPORT_MESSAGE!r})\n"}))
    main.append(build_wheel(build, "sleepy", "1.0.0", files={"sleepy/__init__.py": _SLEEPY}))
    main.append(build_sdist_that_fails(build, "buildfails", "1.0.0", BUILDFAILS_MESSAGE))
    # A build that hangs (a compiler stuck, a resolver backtracking): for step time limits.
    main.append(build_sdist_that_fails(build, "slowbuild", "1.0.0", "",
                                       setup_py="import time\ntime.sleep(600)\n"))
    main.append(build_wheel(build, "needsold", "1.0.0", requires=["numpy<1.0"], files={
        "needsold/__init__.py": "VERSION = '1.0.0'\n"}))
    for version in ("1.0.0", "2.0.0"):
        main.append(build_wheel(build, "tinytool", version, files={
            "tinytool/__init__.py": f"VERSION = {version!r}\n"}))

    for sub in ("main", "torch-cpu"):
        if (root / sub).exists():
            shutil.rmtree(root / sub)
    main_url = write_simple_index(root / "main", main)
    torch_url = write_simple_index(root / "torch-cpu", [torch_cpu])
    # The same CPU torch laid out as a PyTorch mirror (NLPSETUP_TORCH_INDEX_URL=root/mirror):
    # MIRROR/cpu/torch/ is a project page whose links (../../files/...) still resolve.
    mirror = root / "mirror"
    if mirror.exists():
        shutil.rmtree(mirror)
    mirror.mkdir()
    shutil.copytree(root / "torch-cpu" / "files", mirror / "files")
    shutil.copytree(root / "torch-cpu" / "simple", mirror / "cpu")
    shutil.rmtree(build)
    return main_url, torch_url


def rewrap_wheel(src: Path, dest: Path, name: str, version: str) -> Path:
    """The files of wheel `src` as `name-version` (the test index's stand-in for a release it cannot
    download, e.g. the pip an old Python is held at)."""
    with zipfile.ZipFile(src) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if ".dist-info/" not in n and not n.endswith("/")}
    return build_wheel(dest, name, version, files=files)
