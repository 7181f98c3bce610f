"""A package no recipe covers (issue 24), discovered for real from a local PEP 691 index over HTTP
with PEP 700 upload times: agedtool 1.0.0 (2021) breaks with agedlib 2.0.0 (2023), so the search
finds the cutoff; oldpy has wheels for CPython 3.8 only, so it finds that Python; needsgcc is an
sdist whose build needs a compiler, so the search refuses with the blocker and the next command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import installkit
import wheelhouse
from nlpsetup.authoring import diagnosis
from nlpsetup.authoring import search as discover
from nlpsetup.resolve import backends

PY38 = Path("/root/.pyenv/versions/3.8.18/bin/python3.8")
needs_uv = pytest.mark.skipif(backends.find_uv() is None, reason="uv probes the candidates")


CALLTOOL = """import agedlib


def hello():
    return agedlib.greet()  # agedlib 2.0.0 has no greet: only a call fails
"""
FINETOOL = """import sys
import agedlib as al

try:
    OLD = al.old_name  # read only where it exists
except AttributeError:
    OLD = None


def version():
    if sys.version_info < (3,):
        return al.py2_only()
    return al.VERSION
"""
# dicttool finds its dictionary in bigdict or smalldict: neither is a requirement, each comes with an
# extra (as fugashi's with fugashi[unidic] and fugashi[unidic-lite]); bigdict's data is a download
DICTTOOL = """import os


def dictionary():
    for module in ("bigdict", "smalldict"):
        try:
            path = __import__(module).DATA
        except ImportError:
            continue
        if not os.path.exists(path):
            raise RuntimeError("dictionary not downloaded: run python -m bigdict download")
        return path
    raise RuntimeError("no such file or directory: /usr/local/etc/dictrc")


def main():
    print(open(dictionary()).read())
"""
# A stand-in for nltk: word_tokenize needs data (punkt_tab) that `download` fetches from its index URL,
# a folder of the test's (1.0) or a port nothing listens on (2.0)
NLTK = {
    "nltk/__init__.py": "from nltk import corpus, data, downloader\nfrom nltk.downloader import download\n\n\n"
                        "def word_tokenize(text):\n    data.find('tokenizers/punkt_tab')\n    return text.replace('.', ' .').split()\n",
    "nltk/corpus.py": "",
    "nltk/data.py": "import os\nimport sys\n\npath = [os.path.join(sys.prefix, 'share', 'nltk_data')]\n\n\n"
                    "def find(resource):\n    for base in path:\n        if os.path.exists(os.path.join(base, resource)):\n"
                    "            return os.path.join(base, resource)\n    name = resource.split('/')[-1]\n"
                    "    raise LookupError('\\n  Resource \\x1b[93m%s\\x1b[0m not found.\\n  >>> nltk.download(%r)' % (name, name))\n",
    "nltk/downloader.py": "import os\nimport urllib.request\n\n\nclass Downloader:\n    DEFAULT_URL = {url!r}\n\n\n"
                          "def download(name, download_dir=None, quiet=False, raise_on_error=False):\n    try:\n"
                          "        body = urllib.request.urlopen(Downloader.DEFAULT_URL.rsplit('/', 1)[0] + '/' + name, timeout=10).read()\n"
                          "    except Exception as exc:\n        if raise_on_error:\n"
                          "            raise ValueError('Error loading %s: <urlopen error %s>' % (name, exc))\n        return False\n"
                          "    os.makedirs(os.path.join(download_dir, 'tokenizers'), exist_ok=True)\n"
                          "    with open(os.path.join(download_dir, 'tokenizers', name), 'wb') as f:\n        f.write(body)\n"
                          "    return True\n",
}
WORDS = "from nltk import word_tokenize\n\n\ndef words(text):\n    return word_tokenize(text)\n"
# nltk only on an option's path (rouge-score splits sentences with nltk only when asked to)
OPT_WORDS = ("import nltk\n\n\ndef sentences(text, split=False):\n    if split:\n        return nltk.word_tokenize(text)\n"
             "    return text.split('\\n')\n")


def _nltk(url: str) -> dict[str, str]:
    return {path: text.replace("{url!r}", repr(url)) for path, text in NLTK.items()}


# Packages whose README's first example fetches a model from a host out of reach, has rotted, or runs
MODELTOOL = "import urllib.request\n\n\ndef load(name):\n    return urllib.request.urlopen('http://127.0.0.1:9/' + name).read()\n"
README = "# {0}\n\nInstall it:\n\n```bash\npip install {0}\n```\n\nThen:\n\n```python\n{1}\n```\n"


# modules that a working package may have and that fail for reasons no other env fixes, or are not its API
OPTIONAL = {"{0}/plot.py": "import not_installed_plotlib\n", "{0}/_private.py": "raise RuntimeError('private')\n",
            "{0}/tests/__init__.py": "", "{0}/tests/test_it.py": "import pytest_is_not_here\n",
            "{0}/cli.py": "import sys\nsys.exit('usage: cli FILE')\n",
            # Python 2 leftovers: no Python 3 env has these, so no other candidate would fix them
            "{0}/py2.py": "from itertools import imap\n", "{0}/old.py": "print 'hello'\n",
            "{0}/words.py": "import string\n\n\ndef letters():\n    return string.letters\n",
            "{0}/fallback.py": "try:\n    from agedlib import VERSION\nexcept ImportError:\n    from agedlib import OLD_VERSION as VERSION\n"}



def _optional(pkg: str) -> dict[str, str]:
    return {path.format(pkg): text for path, text in OPTIONAL.items()}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("discover")
    build = root / "build"
    data = root / "nltk_data"  # what the stand-in nltk 1.0 downloads
    data.mkdir()
    (data / "punkt_tab").write_text("punkt\n", encoding="utf-8")
    tool = {"agedtool/__init__.py": "from agedlib import greet\n\n\ndef main():\n    print(greet())\n"}
    lib = "VERSION = {!r}\n"
    dists = {
        wheelhouse.build_wheel(build, "agedlib", "1.0.0", files={
            "agedlib/__init__.py": lib.format("1.0.0") + "\n\ndef greet():\n    return 'hello'\n"}): "2021-06-01T12:00:00Z",
        wheelhouse.build_wheel(build, "agedlib", "2.0.0", files={
            "agedlib/__init__.py": lib.format("2.0.0")}): "2023-03-01T12:00:00Z",
        wheelhouse.build_wheel(build, "agedtool", "1.0.0", files=tool, requires=["agedlib"],
                               entry_points={"agedtool": "agedtool:main"}): "2021-07-01T09:30:00Z",
        # calltool reads agedlib.greet only when called; deeptool imports it only in a submodule;
        # finetool reads what every agedlib has, and the rest only under guards or optionally
        wheelhouse.build_wheel(build, "calltool", "1.0.0", files={"calltool/__init__.py": CALLTOOL},
                               requires=["agedlib"]): "2021-07-01T09:30:00Z",
        wheelhouse.build_wheel(build, "deeptool", "1.0.0", files={**_optional("deeptool"), "deeptool/__init__.py": "import agedlib\n",
                                                                  "deeptool/extra.py": "from agedlib import greet\n"},
                               requires=["agedlib"]): "2021-07-01T09:30:00Z",
        wheelhouse.build_wheel(build, "finetool", "1.0.0", files={**_optional("finetool"), "finetool/__init__.py": FINETOOL},
                               requires=["agedlib"], entry_points={"finetool": "finetool:main"}):  # (it has no main)
            "2021-07-01T09:30:00Z",
        # bareimport's modules import agedlib, which its requirements forgot
        wheelhouse.build_wheel(build, "bareimport", "1.0.0", files={
            "bareimport/__init__.py": "", "bareimport/words.py": "import agedlib\n",
            "bareimport/util.py": "from agedlib import VERSION\n", "bareimport/more.py": "import agedlib\n"}):
            "2023-07-01T09:30:00Z",
        wheelhouse.build_wheel(build, "dicttool", "1.0.0", files={"dicttool/__init__.py": DICTTOOL},
                               entry_points={"dicttool": "dicttool:main"},
                               extras={"dev": ["nosuchlinter"], "big": ["bigdict"], "lite": ["smalldict"]}):
            "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "bigdict", "1.0.0", files={
            "bigdict/__init__.py": "import os\nDATA = os.path.join(os.path.dirname(__file__), 'not-downloaded')\n"}):
            "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "smalldict", "1.0.0", files={
            "smalldict/__init__.py": "import os\nDATA = os.path.join(os.path.dirname(__file__), 'words.txt')\n",
            "smalldict/words.txt": "hello\n"}): "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "nltk", "1.0", files=_nltk((data / "index.xml").as_uri())):
            "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "nltk", "2.0", files=_nltk("http://127.0.0.1:9/index.xml")):
            "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "wordtool", "1.0.0", files={"wordtool/__init__.py": WORDS}, requires=["nltk==1.0"]):
            "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "offlinewords", "1.0.0", files={"offlinewords/__init__.py": WORDS},
                               requires=["nltk==2.0"]): "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "optwords", "1.0.0", files={"optwords/__init__.py": OPT_WORDS},
                               requires=["nltk==2.0"]): "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "modeltool", "1.0.0", files={"modeltool/__init__.py": MODELTOOL}, description=README.format(
            "modeltool", "import modeltool\nmodel = modeltool.load('en-small')")): "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "datatool", "1.0.0", files={
            "datatool/__init__.py": "def count(words):\n    return len(words)\n",
            "datatool/datasets/__init__.py": MODELTOOL}, description=README.format(
            "datatool", "import datatool\nfrom datatool import datasets\nprint(datatool.count(datasets.load('imdb')))")):
            "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "rottool", "1.0.0", files={"rottool/__init__.py": "def go(text):\n    return text\n"},
                               description=README.format("rottool", "import rottool\nprint(rottool.go(my_text))")):
            "2026-11-01T09:30:00Z",
        wheelhouse.build_wheel(build, "readmetool", "1.0.0", files={"readmetool/__init__.py": "def go(text):\n    return text\n"},
                               description=".. code-block:: python\n\n    >>> import readmetool\n    >>> readmetool.go('hi')\n"
                                           "    'hi'\n"): "2026-11-01T09:30:00Z",
        wheelhouse.build_sdist_that_fails(build, "needsgcc", "1.0.0", wheelhouse.BUILDFAILS_MESSAGE):
            "2022-01-01T00:00:00Z",
    }
    # oldpy's only wheel is for CPython 3.8 (as an old compiled package's would be)
    pure = wheelhouse.build_wheel(build / "oldpy", "oldpy", "1.0.0", files={"oldpy/__init__.py": "OK = True\n"})
    dists[shutil.copyfile(pure, build / "oldpy-1.0.0-cp38-cp38-manylinux1_x86_64.whl")] = "2020-05-01T00:00:00Z"
    # rangepy 2.0.0 has wheels for CPython 3.10 to 3.13 only; 1.0.0 is pure Python
    two = wheelhouse.build_wheel(build / "rangepy2", "rangepy", "2.0.0", files={"rangepy/__init__.py": "V = 2\n"})
    dists[shutil.copyfile(two, build / "rangepy-2.0.0-cp310.cp311.cp312.cp313-none-any.whl")] = "2026-11-20T00:00:00Z"
    dists[wheelhouse.build_wheel(build, "rangepy", "1.0.0", files={"rangepy/__init__.py": "V = 1\n"})] = \
        "2026-11-10T00:00:00Z"
    bundled = sorted((PY38.parent.parent / "lib" / "python3.8" / "ensurepip" / "_bundled").glob("pip-*.whl"))
    if bundled:  # Python 3.8 envs are held at pip 25.0.1: the offline index carries a stand-in for it
        dists[wheelhouse.rewrap_wheel(bundled[-1], build / "pip", "pip", "25.0.1")] = "2025-02-17T00:00:00Z"
    served = installkit.JsonIndex(root / "timed", dists)
    yield served.url
    served.close()


def _run(cli, index, *args):
    return cli(*args, env={"PIP_INDEX_URL": index}, timeout=900)


def _manifest(home, env) -> dict:
    return json.loads((home / "envs" / env / "nlpsetup.json").read_text(encoding="utf-8"))


@needs_uv
def test_newest_dependency_breaks_the_import_so_discovery_finds_the_cutoff_and_keeps_it(cli, home, index):
    code, out, err = _run(cli, index, "install", "agedtool")
    assert code == 0, out + err
    assert "no recipe for agedtool: searching" in err
    tries = [line for line in err.splitlines() if line.startswith("  try ")]
    assert "latest" in tries[0] and "failed at install" in tries[0] and "newest dependencies" in tries[0]
    assert "deps as of 2021-08-30" in tries[-1] and tries[-1].endswith("verified"), err
    # one line per attempt: the failed check's output is in the log the line names, not printed here
    assert "(log: " in tries[0] and "FAIL" not in err and "nothing was left behind" not in err, err
    assert Path(tries[0].split("(log: ")[1].rstrip(")")).is_file()
    assert _manifest(home, "agedtool")["distributions"]["agedlib"] == "1.0.0"
    # (d) the recipe it wrote is valid, names the date, the import and the command, and is used next time
    written = home / "recipes" / "discovered" / "agedtool.toml"
    text = written.read_text(encoding="utf-8")
    assert ('as_of = "2021-08-30"  # its import fails with the newest dependencies: ImportError: cannot import '
            "name 'greet' from 'agedlib'") in text and 'imports = ["agedtool"]' in text and '["agedtool", "--help"]' in text
    code, out, err = _run(cli, index, "recipe", "check", str(written))
    assert code == 0, out + err
    code, out, err = _run(cli, index, "install", "agedtool", "--name", "again")
    assert code == 0, out + err
    assert "searching" not in err and _manifest(home, "again")["distributions"]["agedlib"] == "1.0.0"
    code, out, _ = _run(cli, index, "list")
    assert any(line.startswith("agedtool") and "(discovered)" in line for line in out.splitlines()), out
    code, out, _ = _run(cli, index, "show", "agedtool")
    assert code == 0 and "discovered on" in out


@needs_uv
@pytest.mark.parametrize(("tool", "why"), [
    ("calltool", "its code reads agedlib.greet, which is gone from this env's agedlib"),
    ("deeptool", "cannot import name 'greet' from 'agedlib'"),
])
def test_an_env_whose_import_passes_but_whose_code_reads_a_removed_name_is_not_verified(cli, home, index, tool, why):
    # calltool imports with agedlib 2.0.0 and fails only when hello() is called; deeptool fails only in
    # a submodule its top level does not import: both need the cutoff
    code, out, err = _run(cli, index, "install", tool)
    assert code == 0, out + err
    tries = [line for line in err.splitlines() if line.startswith("  try ")]
    assert "latest" in tries[0] and why in tries[0], err
    assert "deps as of 2021-08-30" in tries[-1] and tries[-1].endswith("verified"), err
    assert _manifest(home, tool)["distributions"]["agedlib"] == "1.0.0"
    assert why in (home / "recipes" / "discovered" / f"{tool}.toml").read_text(encoding="utf-8")


@needs_uv
def test_optional_modules_guarded_reads_and_private_or_test_modules_do_not_fail_a_working_package(cli, home, index):
    code, out, err = _run(cli, index, "install", "finetool")
    assert code == 0, out + err
    tries = [line for line in err.splitlines() if line.startswith("  try ")]
    assert len(tries) == 1 and "latest" in tries[0] and tries[0].endswith("verified"), err
    # what the checks could not import is in the log, named, with why it does not count
    log = next((home / "logs").rglob("*finetool*")).read_text(encoding="utf-8")
    assert "No module named 'not_installed_plotlib' (importing finetool.plot)" in log, log
    assert "finetool._private" not in log and "pytest_is_not_here" not in log
    assert "finetool --help: its entry point names what the package lacks" in log, log
    text = (home / "recipes" / "discovered" / "finetool.toml").read_text(encoding="utf-8")
    assert 'imports = ["finetool"]' in text and "commands" not in text, text  # not a script that cannot run


@needs_uv
def test_a_dependency_the_package_imports_but_does_not_declare_is_installed_with_it(cli, home, index):
    code, out, err = _run(cli, index, "install", "bareimport")
    assert code == 0, out + err
    tries = [line for line in err.splitlines() if line.startswith("  try ")]
    assert "its code imports agedlib but does not require it" in tries[0], err
    assert "needs agedlib" in tries[1] and tries[1].endswith("verified"), err
    assert "agedlib" in _manifest(home, "bareimport")["distributions"]
    text = (home / "recipes" / "discovered" / "bareimport.toml").read_text(encoding="utf-8")
    assert 'packages = ["bareimport==1.0.0", "agedlib"]' in text and "# agedlib: its code imports agedlib" in text
    code, out, err = _run(cli, index, "install", "bareimport", "--name", "again")  # the recipe holds it
    assert code == 0 and "searching" not in err and "agedlib" in _manifest(home, "again")["distributions"], out + err


def test_what_a_package_lacks_may_come_with_an_extra_so_its_extras_are_tried_one_at_a_time(cli, home, index):
    code, out, err = _run(cli, index, "install", "dicttool")
    assert code == 0, out + err
    tries = [line for line in err.splitlines() if line.startswith("  try ")]
    assert "no such file or directory: /usr/local/etc/dictrc" in tries[0], err
    # not `dev` (for developing it), not all at once; `big` needs a download, `lite` works
    assert "[big]" in tries[1] and "dictionary not downloaded" in tries[1], err
    assert "[lite]" in tries[2] and tries[2].endswith("verified") and len(tries) == 3, err
    assert "smalldict" in _manifest(home, "dicttool")["distributions"]
    written = home / "recipes" / "discovered" / "dicttool.toml"
    text = written.read_text(encoding="utf-8")
    assert 'packages = ["dicttool[lite]==1.0.0"]' in text, text
    assert "# [lite]: RuntimeError: no such file or directory: /usr/local/etc/dictrc" in text, text
    code, out, err = _run(cli, index, "recipe", "check", str(written))
    assert code == 0, out + err
    code, out, err = _run(cli, index, "install", "dicttool", "--name", "again")  # the recipe holds it
    assert code == 0 and "searching" not in err and "smalldict" in _manifest(home, "again")["distributions"], out + err


def test_nltk_data_its_code_needs_is_downloaded_into_the_env_and_an_unreachable_download_is_the_blocker(
        cli, home, index):
    code, out, err = _run(cli, index, "install", "wordtool")
    assert code == 0, out + err
    assert (home / "envs" / "wordtool" / "share" / "nltk_data" / "tokenizers" / "punkt_tab").is_file()
    code, out, err = cli("run", "wordtool", "--", "python", "-c", "import wordtool; print(wordtool.words('A b.'))")
    assert code == 0 and "['A', 'b', '.']" in out, out + err  # its function works, not just its import
    written = home / "recipes" / "discovered" / "wordtool.toml"
    assert "punkt_tab" in written.read_text(encoding="utf-8")
    code, out, err = _run(cli, index, "install", "wordtool", "--name", "again")  # the recipe fetches it too
    assert code == 0 and "searching" not in err, out + err
    assert (home / "envs" / "again" / "share" / "nltk_data" / "tokenizers" / "punkt_tab").is_file()
    # nltk 2.0's data is out of reach: not verified, and the refusal says how to get the data
    code, out, err = _run(cli, index, "install", "offlinewords")
    assert code == 3, out + err
    blocker = next(line for line in err.splitlines() if line.startswith("  offlinewords 1.0.0 on Python "))
    assert ("it needs NLTK data punkt_tab (for nltk.word_tokenize), which nltk downloads from 127.0.0.1, and this host "
            "cannot reach it -> next: download it where 127.0.0.1 is reachable: python -m nltk.downloader -d nltk_data "
            "punkt_tab") in blocker, err
    assert "after 1 attempt;" in err and not (home / "envs" / "offlinewords").exists(), err
    # data needed only on an option's path does not hold back its default one
    code, out, err = _run(cli, index, "install", "optwords")
    assert code == 0 and not (home / "envs" / "optwords" / "share" / "nltk_data").exists(), out + err


def test_the_readmes_first_example_runs_and_a_download_it_cannot_make_is_the_blocker(cli, home, index):
    # its function fetches a model from a host out of reach: an env where only the import works is not verified
    code, out, err = _run(cli, index, "install", "modeltool")
    assert code == 3, out + err
    blocker = next(line for line in err.splitlines() if line.startswith("  modeltool 1.0.0 on Python "))
    assert "it downloads from 127.0.0.1 while it runs, and this host cannot reach it -> next: no env verifies on this " \
           "host: try it where 127.0.0.1 is reachable" in blocker, err
    # an example that has rotted (a name the reader supplies) is noted, not failed; a doctest in reST runs
    for tool, said in (("rottool", "not checked: its README example fails: Nameerror: name 'my_text' is not defined"),
                       # a dataset it loads is the example's input, not the package's function (pytorch-nlp's IMDB)
                       ("datatool", "not checked: its README example downloads a dataset this host cannot reach"),
                       ("readmetool", "README example: ran (2 lines)")):
        code, out, err = _run(cli, index, "install", tool)
        assert code == 0, out + err
        assert said in next((home / "logs").glob(f"{tool}-*.log")).read_text(encoding="utf-8")
    # the example that ran becomes the recipe's smoke code: an install from the recipe checks its function too
    assert "readmetool.go('hi')" in (home / "recipes" / "discovered" / "readmetool.toml").read_text(encoding="utf-8")
    assert "code = " not in (home / "recipes" / "discovered" / "rottool.toml").read_text(encoding="utf-8")
    code, out, err = _run(cli, index, "install", "readmetool", "--name", "again")
    assert code == 0 and "searching" not in err and "code: # its README's first example" in out + err, out + err


@needs_uv
@pytest.mark.skipif(not PY38.exists(), reason="needs pyenv's Python 3.8.18")
def test_wheels_for_one_old_python_only_so_discovery_picks_that_python(cli, home, index, tmp_path):
    code, out, err = _run(cli, index, "plan", "oldpy")
    assert code == 0 and "Python 3.8" in out and "Python 3.13" not in out, out + err
    code, out, err = _run(cli, index, "install", "oldpy")
    assert code == 0, out + err
    assert _manifest(home, "oldpy")["interpreter"]["version"].startswith("3.8.")
    assert 'python = ">=3.8,<3.9"' in (home / "recipes" / "discovered" / "oldpy.toml").read_text(encoding="utf-8")
    # recipe new: the same search in a temporary home, the recipe written where asked
    code, out, err = _run(cli, index, "recipe", "new", "oldpy", "-o", str(tmp_path / "oldpy.toml"))
    assert code == 0, out + err
    assert 'imports = ["oldpy"]' in (tmp_path / "oldpy.toml").read_text(encoding="utf-8")
    assert sorted(p.name for p in (home / "envs").iterdir()) == ["oldpy"]  # its env was temporary


@needs_uv
def test_nothing_works_is_exit_3_with_each_blocker_and_the_next_command(cli, home, index):
    code, out, err = _run(cli, index, "install", "needsgcc", "--max-attempts", "3")
    assert code == 3, out + err
    # the first build meets the missing compiler; every other build of the release would too: one attempt
    assert "no working env found for needsgcc after 1 attempt;" in err and "C compiler" in err
    assert "build-essential" in err  # the next command
    # one clean line per blocker: what was tried, the diagnosis, the next command; no rollback note
    blocker = next(line for line in err.splitlines() if line.startswith("  needsgcc 1.0.0 on Python "))
    assert "a build needs a C compiler" in blocker and "-> next: install a C compiler" in blocker, err
    assert "nothing was left behind" not in err and "FAIL" not in err, err
    assert not (home / "envs" / "needsgcc").exists() and not (home / "recipes" / "discovered" / "needsgcc.toml").exists()


def test_a_name_the_index_does_not_have_is_exit_2_in_one_line(cli, home, index):
    code, out, err = _run(cli, index, "install", "nosuchthing")
    assert code == 2, out + err
    assert err.splitlines()[0] == ("nlpsetup: error: unknown tool 'nosuchthing': no recipe, and no package of that "
                                   f"name on the index {index}")
    assert "searching" not in err and not (home / "envs").exists()


def test_diagnoses_choose_the_next_attempt_and_become_the_pins_why():
    abi = diagnosis.diagnose("A module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.0.2 as it may crash")
    assert abi.kind == "numpy-abi" and abi.pin[0] == "numpy<2"
    built = diagnosis.diagnose("ValueError: numpy.ndarray has the wrong size, try recompiling. Expected 80, got 88")
    assert built.kind == "numpy-build" and built.pin is None
    gone = diagnosis.diagnose("ModuleNotFoundError: No module named 'pkg_resources'")
    assert gone.needs == (("setuptools<81", gone.why),)  # installed with it (an env may have no setuptools)
    late = diagnosis.diagnose("AssertionError: analyzer.py:61 imports pkg_resources: No module named 'pkg_resources'")
    assert late.kind == "pkg-resources" and late.needs[0][0] == "setuptools<81"  # imported in a function only
    header = diagnosis.diagnose("src/x.c:1:10: fatal error: libxml/xmlversion.h: No such file or directory")
    assert header.kind == "header" and "libxml/xmlversion.h" in header.fix
    assert diagnosis.diagnose("JAVA_HOME is not set").kind == "jvm"
    api = diagnosis.diagnose("AssertionError: pkg/util.py:12 reads numpy.float, which this env lacks (and 2 more)")
    assert (api.kind, api.why) == ("api", "its code reads numpy.float, which is gone from this env's numpy")
    assert api.pin == ("numpy<1.24", api.why)  # the numpy that still has it, before any older date
    assert diagnosis.diagnose("acros.py:178 reads numpy.NaN, which this env lacks").pin[0] == "numpy<2"
    torch = diagnosis.diagnose("AssertionError: undeclared dependency: torch is imported by 8 of x's 9 modules (x.nn)")
    assert torch.needs == (("torch", "its code imports torch but does not require it"),)
    many = diagnosis.diagnose("undeclared dependency: icu is imported by its command polyglot but is not among its "
                             "requirements; also imported by its modules: numpy, pycld2")
    assert [req for req, _ in many.needs] == ["pyicu", "numpy", "pycld2"]
    assert diagnosis.diagnose("undeclared dependency: sklearn is imported by x").needs[0][0] == "scikit-learn"
    dated = diagnosis.diagnose("ImportError: cannot import name 'x' from 'y'", newest=False)
    assert dated.why == "its import fails: ImportError: cannot import name 'x' from 'y'"  # not "the newest"
    c = discover.Candidate("1.0", "3.12", None)
    retried = discover.next_after(c, gone, [discover.Candidate("1.0", "3.11", None)])
    assert retried[0].needs == (("setuptools<81", gone.why),) and retried[0].python == "3.12"
    found = discover.Found("demo", retried[0], ("demo",), (), "h", "2026-01-01")
    assert 'packages = ["demo==1.0", "setuptools<81"]' in discover.recipe_text(found)
    assert f"# setuptools<81: {gone.why}" in discover.recipe_text(found)


def test_candidates_follow_the_index_newest_release_and_python_first_latest_before_a_cutoff():
    doc = {"files": [
        {"filename": "demo-2.0.0rc1-py3-none-any.whl", "upload-time": "2024-01-01T00:00:00Z"},
        {"filename": "demo-1.5.0-py3-none-any.whl", "upload-time": "2023-01-01T00:00:00Z", "yanked": "broken"},
        {"filename": "demo-1.0.0-cp38-cp38-manylinux1_x86_64.whl", "upload-time": "2020-05-02T00:00:00Z"},
        {"filename": "demo-1.0.0-cp37-cp37m-manylinux1_x86_64.whl", "upload-time": "2020-05-01T00:00:00Z"},
        {"filename": "demo-0.9.tar.gz", "upload-time": "2019-01-01T00:00:00Z", "requires-python": ">=3.9"},
    ]}
    rels = discover.releases(doc)
    assert [r.version for r in rels] == ["1.0.0", "0.9"]  # no pre-release, nothing yanked
    got = [(c.version, c.python, c.as_of, c.binary_only) for c in discover.candidates(rels, ["3.8", "3.12", "3.10"])]
    assert got == [("1.0.0", "3.8", None, True), ("1.0.0", "3.8", "2020-06-30", True),
                   ("0.9", "3.12", None, False), ("0.9", "3.12", "2019-03-02", False),
                   ("0.9", "3.10", None, False), ("0.9", "3.10", "2019-03-02", False)]


def test_a_resolution_with_torch_makes_it_a_framework_so_the_host_gets_its_cpu_or_cuda_build():
    from nlpsetup.recipes import load as recipes

    resolved = "numpy==2.1.0\n    # via torch\ntorch==2.5.1\n    # via pytorch-nlp\n"
    c = discover.Candidate("0.5.0", "3.12", "2021-01-01", pins=(("numpy<2", "built against numpy 1.x"),),
                           torch=discover.torch_in(resolved))
    text = discover.recipe_text(discover.Found("pytorch-nlp", c, ("torchnlp",), (), "h", "2026-01-01"))
    recipe = recipes.parse(text, "pytorch-nlp.toml", stem="pytorch-nlp")  # the schema `recipe check` applies
    v = recipe.variants[0]
    assert v.framework == (("torch", "==2.5.1"),) and str(v.python) and v.smoke.imports == ("torchnlp",)
    assert [(p.req, p.why) for p in v.pins] == [("numpy<2", "built against numpy 1.x")]


def _sweep(rels, minors, works, budget=12, every_release=False):
    """The search's loop without probes or installs: `works(candidate)` is None when it verifies, else
    the output of its failure. (the attempts, the winner or None). The first release only, as when
    asked for, unless `every_release`."""
    queue, tried = discover.candidates(rels, minors, None if every_release else rels[0].version), []
    while queue and len(tried) < budget:
        c = queue.pop(0)
        if (out := works(c)) is None:
            return tried, c
        d = diagnosis.diagnose(out)
        queue = discover.next_after(c, d, queue, tried)
        tried.append((c, d))
    return tried, None


HOST = ["3.13", "3.12", "3.11", "3.10", "3.9", "3.8", "3.7", "3.6"]
NO_CYTOOLZ = ("  x No solution found when resolving dependencies:\n  hint: Wheels are required for `cytoolz` because "
              "building from source is disabled for `cytoolz` (i.e., with `--no-build-package cytoolz`)")


def test_an_undeclared_dependency_once_found_comes_with_every_later_candidate():
    # pytorch-nlp 0.5.0: imports torch without requiring it; the newest torch lacks torch._six; torch of
    # its date has wheels for Python 3.7 and older only
    rels = [discover.Release("0.5.0", discover.dt.date(2019, 11, 4), ">=3.5", None)]

    def works(c):
        if not c.needs:
            return "AssertionError: undeclared dependency: torch is imported by 8 of pytorch_nlp's 9 modules (torchnlp.nn)"
        if c.as_of is None:
            return "AssertionError: ModuleNotFoundError: No module named 'torch._six' (importing torchnlp.samplers)"
        return None if c.python == "3.7" else (f"hint: You require CPython {c.python} (`cp3xx`), but we only found wheels"
                                               " for `torch` (v1.3.1) with the following Python ABI tags: `cp37m`")

    tried, winner = _sweep(rels, HOST, works)
    assert winner is not None and (winner.python, winner.as_of) == ("3.7", "2020-01-03"), tried
    assert winner.needs == (("torch", "its code imports torch but does not require it"),)
    assert sum(1 for c, _ in tried if not c.needs) == 1, tried  # learned once, not again on each Python
    assert tried[2][1].why == "no wheel of torch fits this Python (and builds are off)"
    assert [c.python for c, _ in tried if c.as_of] == ["3.13", "3.12", "3.8"], tried


def test_a_stdlib_name_a_later_python_removed_moves_the_search_to_an_older_python_not_an_older_date():
    # pymorphy2 0.9.1 calls inspect.getargspec, which Python 3.11 removed; with the newest dependencies
    # it works on 3.10
    rels = [discover.Release("0.9.1", discover.dt.date(2020, 9, 25), ">=3.5", None)]

    def works(c):
        return None if discover._minor_key(c.python) < (3, 11) else \
            "AssertionError: units/base.py:70 reads inspect.getargspec, which this env lacks"

    tried, winner = _sweep(rels, HOST, works)
    assert (winner.python, winner.as_of) == ("3.10", None) and len(tried) == 1, tried
    assert tried[0][1].why == "its code needs inspect.getargspec, which Python 3.11 removed"
    assert diagnosis.diagnose("ModuleNotFoundError: No module named 'imp' (importing x.y)").below == "3.12"
    # neuralcoref's setup: setuptools' distutils on 3.12+ has no msvccompiler
    assert diagnosis.diagnose("ImportError: cannot import name 'msvccompiler' from 'distutils'").below == "3.12"


def test_what_the_host_lacks_a_library_or_the_network_ends_the_release_and_names_the_fix():
    # pyenchant: every release loads libenchant, which this host lacks; neuralcoref 4.0 downloads its
    # model at import from a host that is out of reach
    rels = [discover.Release(v, discover.dt.date(2021, 1, 1), ">=3.6", None) for v in ("3.3.0", "3.2.2", "3.2.1")]
    lib = "ImportError: The 'enchant' C library was not found and maybe needs to be installed."
    tried, winner = _sweep(rels, HOST, lambda c: lib, every_release=True)
    assert winner is None and [c.version for c, _ in tried] == ["3.3.0", "3.2.2"], tried  # not every Python and date
    d = tried[0][1]
    assert (d.kind, d.why) == ("library", "it needs the shared library libenchant, which this host lacks")
    assert d.fix == "install the system package that has libenchant: find it with `apt-file search libenchant` (Debian/Ubuntu)"
    assert diagnosis.diagnose("OSError: libmecab.so.2: cannot open shared object file: No such file or directory",
                              "macos").fix == "install the library libmecab.so.2 (e.g. with Homebrew), then run the command again"
    net = ("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='s3.amazonaws.com', port=443): Max retries "
           "exceeded with url: /models.huggingface.co/neuralcoref/neuralcoref.tar.gz (Caused by NewConnectionError")
    tried, winner = _sweep(rels, HOST, lambda c: net if c.version == "3.3.0" else None, every_release=True)
    assert winner.version == "3.2.2" and len(tried) == 1, tried  # an older release may not download
    tried, winner = _sweep(rels, HOST, lambda c: net, every_release=True)
    assert [c.version for c, _ in tried] == ["3.3.0", "3.2.2"], tried  # but once two do, the rest would too
    assert tried[0][1].why == "it downloads from s3.amazonaws.com while it runs, and this host cannot reach it"
    assert "where s3.amazonaws.com is reachable" in tried[0][1].fix
    # past the newest three releases, one older release at a time (an older one may predate the download)
    many = [discover.Release(f"0.{n}", discover.dt.date(2020, 1, n), ">=3.6", None) for n in range(9, 0, -1)]
    queue = discover.candidates(many, ["3.12"])
    assert {c.version for c in queue} == {"0.9", "0.8", "0.7"}
    d = diagnosis.diagnose("AssertionError: needs NLTK data cmudict (for nltk.corpus.cmudict), which nltk downloads from "
                           "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/index.xml: Error loading cmudict: "
                           "<urlopen error [Errno 111] Connection refused>")
    assert discover.further_back(many, discover.Candidate("0.7", "3.12", None), d, [], ["3.12"])[0].version == "0.6"
    assert discover.further_back(many, queue[0], d, queue[1:], ["3.12"]) == queue[1:]  # older ones still queued
    assert discover.further_back(many, queue[-1], diagnosis.diagnose(lib), [], ["3.12"]) == []  # not for a library
    assert discover.further_back(many, queue[-1], diagnosis.diagnose(net), [], ["3.12"]) == []  # nor a hub's model
    nltk = "[nltk_data] Error loading cmudict: <urlopen error pathsec: no\n[nltk_data]     validated address for host\n" \
           "[nltk_data]     'raw.githubusercontent.com'; refusing to connect"
    assert "from raw.githubusercontent.com while" in diagnosis.diagnose(nltk).why


def test_extras_are_tried_one_at_a_time_once_per_release_and_not_the_developers_ones():
    rels = [discover.Release(v, discover.dt.date(2026, 11, 1), ">=3.8", None) for v in ("1.5.2", "1.5.1")]
    fails = ("RuntimeError: Failed initializing MeCab\nparam.cpp(69) [ifs] no such file or directory: /usr/local/etc/mecabrc"
             "\nextras it declares: dev, unidic, unidic-lite, test, all, docs")

    def works(c):
        return None if c.extra == "unidic-lite" else "RuntimeError: unidic dictionary not downloaded" if c.extra else fails

    tried, winner = _sweep(rels, HOST, works, every_release=True)
    assert [(c.version, c.python, c.extra) for c, _ in tried] == [("1.5.2", "3.13", None), ("1.5.2", "3.13", "unidic")]
    assert tried[0][1].why == "param.cpp(69) [ifs] no such file or directory: /usr/local/etc/mecabrc"  # not the extras
    assert winner.extra == "unidic-lite" and winner.requirement("fugashi") == "fugashi[unidic-lite]==1.5.2"
    # no extra helps: each is tried once for the release, then the search goes on as before
    tried, winner = _sweep(rels, HOST, lambda c: fails, budget=8, every_release=True)
    extras = [(c.version, c.extra) for c, _ in tried if c.extra]
    assert winner is None and extras == [("1.5.2", "unidic"), ("1.5.2", "unidic-lite"),
                                         ("1.5.1", "unidic"), ("1.5.1", "unidic-lite")], tried


def test_a_failure_the_python_does_not_change_is_not_retried_on_every_python():
    # textacy 0.9.1: a pure wheel; with the newest dependencies, no wheel of a dependency on any Python;
    # with dependencies of its date, wheels for Pythons of then only (3.7 here)
    rels = [discover.Release("0.9.1", discover.dt.date(2019, 9, 3), ">=3.6", None)]

    def works(c):
        return None if (c.python, c.as_of) == ("3.7", "2019-11-02") else NO_CYTOOLZ

    tried, winner = _sweep(rels, HOST, works)
    assert winner == discover.Candidate("0.9.1", "3.7", "2019-11-02"), tried
    assert tried[0][1].why == "no wheel of cytoolz fits this Python (and builds are off)"
    latest = [c.python for c, _ in tried if c.as_of is None]
    dated = [c.python for c, _ in tried if c.as_of]
    assert latest == ["3.13", "3.12"]  # the same diagnosis twice: the other Pythons would meet it too
    # the Pythons newer than the cutoff had no wheels as of then: after two of them, the older ones
    assert dated == ["3.13", "3.12", "3.8"] and len(tried) == 5

    # no build of the dependencies of 2019 on Python 3.13 while the host has a Python of then; else a build
    dated = discover.Candidate("0.9.1", "3.13", "2019-11-02")
    assert not discover.may_build(dated, [], HOST) and discover.may_build(dated, [], ["3.13", "3.12"])
    assert discover.may_build(discover.Candidate("0.9.1", "3.13", None), [], HOST)
    # the same diagnosis on two Pythons that predate the cutoff: the cutoff is done on every Python
    tried, winner = _sweep(rels, HOST, lambda c: "fatal error: sys/endian.h: No such file or directory")
    assert winner is None and [c.python for c, _ in tried] == ["3.13", "3.13", "3.12", "3.12", "3.8", "3.7"]
    # different diagnoses on different Pythons: each Python may still change the outcome
    tried, winner = _sweep(rels, HOST, lambda c: f"ImportError: cannot import name 'x{c.python}' from 'y'")
    assert winner is None and len(tried) == 12


def test_hints_fit_the_os_a_foreign_header_names_a_release_or_python_with_wheels():
    bsd = diagnosis.diagnose("cytoolz/x.c:5:10: fatal error: sys/endian.h: No such file or directory", "linux")
    assert bsd.kind == "header" and not bsd.fix and "apt-file" not in bsd.why
    assert "a header Linux does not have" in bsd.why and discover.blocks_builds(bsd)
    rels = [discover.Release("0.9.1", discover.dt.date(2019, 9, 3), None, None),
            discover.Release("0.8.0", discover.dt.date(2019, 1, 3), None, None)]
    c = discover.Candidate("0.9.1", "3.12", None, binary_only=False)
    assert discover.next_command("textacy", c, bsd, rels, HOST, {"3.13", "3.12"}) == \
        "nlpsetup install textacy==0.9.1 --python 3.11"
    assert discover.next_command("textacy", c, bsd, rels, ["3.12"], {"3.12"}) == "nlpsetup install textacy==0.8.0"
    # a header of this OS: the package that provides it; on macOS, its own tools
    linux = diagnosis.diagnose("fatal error: libxml/xmlversion.h: No such file or directory", "linux")
    assert "apt-file search libxml/xmlversion.h" in linux.fix and "does not have" not in linux.why
    assert "apt-file" not in diagnosis.diagnose("fatal error: libxml/xmlversion.h: No such file", "macos").fix
    assert "xcode-select" in diagnosis.diagnose("command 'gcc' failed", "macos").fix
    assert "apt-get" not in diagnosis.diagnose("fatal error: sys/endian.h: No such file", "macos").fix
    assert not diagnosis.foreign_header("endian.h", "linux") and diagnosis.foreign_header("machine/endian.h", "linux")


def test_nothing_works_gives_one_clean_line_per_blocker_and_no_rollback_note_in_a_recipe():
    from nlpsetup.authoring import discovery

    rels = [discover.Release("0.9.1", discover.dt.date(2019, 9, 3), None, None)]
    failed = "smoke check failed: ImportError: cannot import name 'greet' from 'agedlib'; nothing was left behind"
    attempts = []
    for python, as_of, out in [("3.13", None, failed), ("3.12", None, failed),
                               ("3.13", "2019-11-02", "fatal error: sys/endian.h: No such file or directory\n"
                                                      "error: command 'gcc' failed; nothing was left behind")]:
        d = diagnosis.diagnose(out)
        attempts.append(discovery.Attempt(discover.Candidate("0.9.1", python, as_of), "install", False, d.why, d, "/l.log"))
    err = discovery.refusal("textacy", attempts, rels, ["3.13", "3.12", "3.7"], False)
    assert err.exit_code == 3
    head, *lines = err.message.splitlines()
    assert head == "no working env found for textacy after 3 attempts; blockers:"
    assert len(lines) == 2  # the same diagnosis on two Pythons is one blocker
    assert lines[0] == ("  textacy 0.9.1 on Python 3.13, 3.12 (latest deps): its import fails with the newest "
                        "dependencies: ImportError: cannot import name 'greet' from 'agedlib' -> next: "
                        "nlpsetup install textacy==0.9.1 --python 3.7")
    assert lines[1] == ("  textacy 0.9.1 on Python 3.13 (deps as of 2019-11-02): a C header is missing: sys/endian.h, "
                        "a header Linux does not have: only a release or Python with wheels works here -> next: "
                        "nlpsetup install textacy==0.9.1 --python 3.7")
    assert "nothing was left behind" not in err.message + (err.hint or "")
    why = discover.why_cutoff(discover.Candidate("0.9.1", "3.13", "2019-11-02"),
                              [(a.candidate, a.why) for a in attempts])
    text = discover.recipe_text(discover.Found("textacy", discover.Candidate("0.9.1", "3.13", "2019-11-02"),
                                               ("textacy",), (), "h", "2026-01-01", as_of_why=why))
    assert "left behind" not in text and "# its import fails with the newest dependencies: ImportError" in text
    # a winner on a Python whose `latest` was skipped: the same release's failure on another Python
    assert discover.why_cutoff(discover.Candidate("0.9.1", "3.7", "2019-11-02"),
                               [(a.candidate, a.why) for a in attempts]) == attempts[1].why


def test_fetch_python_adds_the_pythons_uv_can_download_after_this_hosts():
    rels = [discover.Release("2.0", None, None, None), discover.Release("1.0", None, None, frozenset({"3.8"}))]
    tried = discover.candidates(rels, ["3.13", "3.12"], fetchable=["3.14", "3.13", "3.8"])
    assert [(c.version, c.python, c.fetch) for c in tried] == [
        ("2.0", "3.13", False), ("2.0", "3.12", False), ("2.0", "3.14", True), ("2.0", "3.8", True),
        ("1.0", "3.8", True)]
    assert "Python 3.8 (uv download)" in tried[-1].label()
    # a refusal offers the download where the search did not try it, and pyenv where uv has no build
    d = diagnosis.Diagnosis("no-wheels", "no wheels for this Python")
    assert discover.next_command("old", discover.Candidate("1.0", "3.13", None), d, rels[1:], ["3.13"], {"3.13"},
                                 fetchable=["3.8"]).startswith("nlpsetup install old==1.0 --python 3.8 --fetch-python")
    assert discover.next_command("old", discover.Candidate("1.0", "3.13", None), d, rels[1:], ["3.13"], {"3.13"},
                                 fetchable=[]).startswith("pyenv install 3.8")


@needs_uv
def test_fetch_python_plans_a_download_for_a_python_this_host_lacks(cli, index, tmp_path):
    code, out, err = _run(cli, index, "host", "--json")
    facts = json.loads(out)
    assert facts["tools"].get("uv"), "uv beside nlpsetup is a host tool even off PATH"
    facts["pythons"] = [p for p in facts["pythons"] if p["version"].startswith("3.13.")]  # a host without 3.8
    host_file = tmp_path / "host.json"
    host_file.write_text(json.dumps(facts), encoding="utf-8")
    code, out, err = _run(cli, index, "plan", "oldpy", "--host-file", str(host_file), "--fetch-python")
    assert code == 0 and "1.0.0  Python 3.8 (uv download)" in out, out + err
    code, out, err = _run(cli, index, "plan", "oldpy", "--host-file", str(host_file), "--json")
    assert code == 0 and json.loads(out)["search"] == [], "without --fetch-python nothing here fits its one wheel"


@needs_uv
@pytest.mark.skipif(not all((PY38.parents[2] / v).exists() for v in ("3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0")),
                    reason="needs pyenv's Pythons 3.9 to 3.13")
def test_recipe_new_writes_one_variant_per_range_of_pythons_that_verifies(cli, home, index, tmp_path):
    """The winner (2.0.0 on 3.13), then the same on each other Python: 2.0.0 holds down to 3.10, 3.9
    needs 1.0.0; the attempt limit bounds the whole (3.8 and older are not reached)."""
    target = tmp_path / "rangepy.toml"
    code, out, err = _run(cli, index, "recipe", "new", "rangepy", "-o", str(target), "--max-attempts", "5")
    assert code == 0, out + err
    assert "(verified on Python 3.13, 3.12, 3.11, 3.10, 3.9)" in out, out
    text = target.read_text(encoding="utf-8")
    assert 'id = "2.0.0-py3.10-3.13"\npython = ">=3.10,<3.14"' in text, text
    assert 'id = "1.0.0-py3.9"\npython = ">=3.9,<3.10"' in text, text
    assert _run(cli, index, "recipe", "check", str(target))[0] == 0
    assert not (home / "envs").exists(), "its envs were temporary"


def test_a_probe_resolves_with_this_hosts_interpreter_and_never_downloads_one(tmp_path):
    """`uv pip compile --python-version 3.13` with no 3.13 on PATH (pyenv's shims) fetched a CPython
    first: 10-30 s a probe, offline. The probe names this host's interpreter and forbids downloads."""
    import sys

    from nlpsetup.authoring import discovery
    from nlpsetup.facts.host import Host
    from nlpsetup.facts.pythons import PythonInstall

    seen = tmp_path / "seen.json"
    fake = tmp_path / "uv"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"json.dump([sys.argv[1:], os.environ.get('UV_PYTHON_DOWNLOADS')], open({str(seen)!r}, 'w'))\n"
                    "print('demo==1.0')\n", encoding="utf-8")
    fake.chmod(0o755)
    here = PythonInstall(version="3.13.0", implementation="CPython", path="/opt/py313/bin/python3", source="pyenv")
    host = Host(os="linux", arch="x86_64", pythons=(here,))
    for minor, expect in (("3.13", ["--python", "/opt/py313/bin/python3"]), ("3.8", [])):
        ok, _ = discovery.probe("demo", discover.Candidate("1.0", minor, None), host, str(fake), tmp_path)
        argv, downloads = json.loads(seen.read_text(encoding="utf-8"))
        assert ok and downloads == "never" and ("--python" in argv) == bool(expect), argv
        assert all(a in argv for a in expect)
