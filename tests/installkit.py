"""Shared set-up for the tests that run real installs offline: the local index of tiny wheels,
a folder of recipes for them, and the environment that points nlpsetup (pip and uv) at both."""

from __future__ import annotations

import os
from pathlib import Path

import wheelhouse

RECIPE = """\
name = "{name}"
summary = "test tool {name}"
homepage = "https://example.org/{name}"
status = "active"

[[variants]]
id = "{id}"
python = ">=3.8"
packages = [{packages}]
{extra}
[variants.smoke]
{smoke}
timeout = {timeout}
"""

TOOLS = {
    # name: (packages, extra variant lines, smoke lines, timeout)
    "nlpdemo": ('"nlpdemo==1.0.0"', 'framework = { torch = ">=2.0" }',
                'imports = ["nlpdemo", "torch"]\n'
                'code = "import nlpdemo, torch; assert nlpdemo.tokens(\'a b\') == [\'a\', \'b\']"\n'
                'commands = [["nlpdemo", "--help"]]', 60),
    "tinytool": ('"tinytool==2.0.0"', "", 'code = "import tinytool; assert tinytool.VERSION == \'2.0.0\'"', 60),
    "brokenimport": ('"brokenimport==1.0.0"', "", 'imports = ["brokenimport"]', 60),
    "needsold": ('"needsold==1.0.0"', "", 'imports = ["needsold"]', 60),
    "buildfails": ('"buildfails==1.0.0"', "", 'imports = ["buildfails"]', 60),
    "slowbuild": ('"slowbuild==1.0.0"', "", 'imports = ["slowbuild"]', 60),
    "sleepy": ('"sleepy==1.0.0"', "", 'imports = ["sleepy"]\nenv = { SLEEPY_IMPORT_SECONDS = "60" }', 2),
}


def write_recipes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (packages, extra, smoke, timeout) in TOOLS.items():
        (folder / f"{name}.toml").write_text(RECIPE.format(name=name, id="1", packages=packages, extra=extra,
                                                           smoke=smoke, timeout=timeout))
    return folder


def build(root: Path) -> dict[str, str]:
    main = wheelhouse.standard_index(root / "index")
    recipes = write_recipes(root / "recipes")
    return {"index": main, "mirror": (root / "index" / "mirror").resolve().as_uri(), "recipes": str(recipes),
            "uv_cache": str(root / "uv-cache"), "pip_cache": str(root / "pip-cache")}


_WARM: list[Path] = []  # this process's warm interpreter cache, made on first use


def seed_home(home: Path) -> None:
    """Start a home that does not exist yet with what one nlpsetup command leaves in its cache on
    this machine: the interpreters it probed (pythons.json, py-info). Probing every pyenv Python
    costs a fresh home about 1 CPU-second, and nearly every test starts from one; the cold probe
    and a damaged cache keep tests of their own (test_host, test_hostile)."""
    import shutil

    if home.exists():
        return
    if not _WARM:
        import atexit
        import subprocess
        import sys
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="nlpsetup-warm-"))
        atexit.register(shutil.rmtree, root, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "NLPSETUP_"))}
        subprocess.run([sys.executable, "-m", "nlpsetup", "host", "--json"], env={**env, "NLPSETUP_HOME": str(root)},
                       capture_output=True, check=True, timeout=300)
        _WARM.append(root / "cache")
    (home / "cache").mkdir(parents=True)
    shutil.copy2(_WARM[0] / "pythons.json", home / "cache" / "pythons.json")
    shutil.copytree(_WARM[0] / "py-info", home / "cache" / "py-info")


def environ(kit: dict[str, str], home: Path, **extra: str) -> dict[str, str]:
    """The environment a user of the local index has: no global pip config, no find-links (and the
    home, when new, seeded with this machine's interpreter cache: seed_home)."""
    seed_home(Path(home))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update({
        "NLPSETUP_HOME": str(home),
        "NLPSETUP_RECIPES_PATH": kit["recipes"],
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": kit["index"],
        "PIP_CACHE_DIR": kit["pip_cache"],
        "NLPSETUP_TORCH_INDEX_URL": kit["mirror"],
        "UV_CACHE_DIR": kit["uv_cache"],
        "UV_NO_CONFIG": "1",
        "NO_COLOR": "1",
    })
    env.update(extra)
    return env


def nlpsetup(kit: dict[str, str], home: Path, *args: str, timeout: int = 300, **extra: str):
    """Run `nlpsetup ARGS` as a user of the local index would: (returncode, stdout, stderr)."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "nlpsetup", *args], capture_output=True, text=True,
                       env=environ(kit, home, **extra), timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class _Served:
    """A folder served over HTTP on a free local port by `handler` (a SimpleHTTPRequestHandler)."""

    def _serve(self, handler, root: Path) -> None:
        import threading
        from functools import partial
        from http.server import ThreadingHTTPServer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SlowIndex(_Served):
    """The local index served over HTTP with a delay before each file (wheel or sdist), so that a
    test can signal nlpsetup while pip or uv is downloading. `requested` is set at the first file
    asked for."""

    def __init__(self, kit: dict[str, str], delay: float):
        import threading
        from http.server import SimpleHTTPRequestHandler
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        root = Path(url2pathname(urlparse(kit["index"]).path)).parent  # .../main (simple/ and files/)
        self.requested = threading.Event()
        index = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                if "/files/" in self.path:
                    index.requested.set()
                    import time

                    time.sleep(delay)
                super().do_GET()

            def log_message(self, *args):
                pass

        self._serve(Handler, root)


class JsonIndex(_Served):
    """A PEP 691 JSON index over HTTP, each file with its PEP 700 `upload-time` (or, with
    `upload_times=False`, without one, as many mirrors serve it): `dists` maps each wheel or sdist
    to its upload time. HTML (PEP 503) is served to a client that does not ask for JSON."""

    def __init__(self, root: Path, dists: dict[Path, str], upload_times: bool = True):
        import hashlib
        import json
        import shutil
        from http.server import SimpleHTTPRequestHandler

        root = Path(root)
        (root / "files").mkdir(parents=True, exist_ok=True)
        pages: dict[str, list[dict]] = {}
        for dist, uploaded in dists.items():
            shutil.copyfile(dist, root / "files" / dist.name)
            entry = {"filename": dist.name, "url": f"../../files/{dist.name}",
                     "hashes": {"sha256": hashlib.sha256(dist.read_bytes()).hexdigest()}}
            if upload_times:
                entry["upload-time"] = uploaded
            pages.setdefault(wheelhouse._project_of(dist), []).append(entry)
        wheelhouse.write_simple_index(root / "html", list(dists))  # the same files as PEP 503 pages

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                wants_json = "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", "")
                if len(parts) == 2 and parts[0] == "simple" and wants_json:
                    files = pages.get(parts[1])
                    if files is None:
                        return self.send_error(404)
                    body = json.dumps({"meta": {"api-version": "1.1"}, "name": parts[1], "files": files,
                                       "versions": []}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if parts[:1] == ["simple"]:
                    self.path = "/html" + self.path
                return super().do_GET()

            def log_message(self, *args):
                pass

        self._serve(Handler, root)


PY38 = Path("/root/.pyenv/versions/3.8.18/bin/python3.8")


def _agedlib(version: str, greet: bool) -> dict[str, str]:
    body = f"VERSION = {version!r}\n" + ("\n\ndef greet():\n    return 'hello'\n" if greet else "")
    return {"agedlib/__init__.py": body}


def aged_dists(build: Path) -> dict[Path, str]:
    """The aged set (tests/test_asof.py), each file with its upload time: agedlib 2.0.0, uploaded in
    2023, drops the greet() agedtool 1.0.0 (2021) calls; agedtool 1.1.0 came in 2024. With pyenv's
    Python 3.8, a stand-in for pip 25.0.1 (what 3.8 envs are held at), which the offline index lacks."""
    tool = {"agedtool/__init__.py": "from agedlib import greet\n\n\ndef hello():\n    return greet()\n"}
    dists = {
        wheelhouse.build_wheel(build, "agedlib", "1.0.0", files=_agedlib("1.0.0", True)): "2021-06-01T12:00:00Z",
        wheelhouse.build_wheel(build, "agedlib", "2.0.0", files=_agedlib("2.0.0", False)): "2023-03-01T12:00:00Z",
        wheelhouse.build_wheel(build, "agedtool", "1.0.0", files=tool, requires=["agedlib"]): "2021-07-01T09:30:00Z",
        wheelhouse.build_wheel(build / "new", "agedtool", "1.1.0", files=tool, requires=["agedlib"]):
            "2024-05-01T00:00:00Z",
    }
    bundled = sorted((PY38.parent.parent / "lib" / "python3.8" / "ensurepip" / "_bundled").glob("pip-*.whl"))
    if bundled:
        dists[wheelhouse.rewrap_wheel(bundled[-1], build / "pip", "pip", "25.0.1")] = "2025-02-17T00:00:00Z"
    return dists
