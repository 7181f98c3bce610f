"""What a failed attempt of a discovery says: its output (a probe's resolution, an install's log, the
derived checks) read into a Diagnosis, whose kind, pin, needed packages or Python limit choose the
search's next attempt (search.next_after) and whose why becomes the pins' why in the recipe."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # numpy-build | numpy-abi | pkg-resources | api | import | compiler | header | jvm | rust | library | network | no-wheels | resolve | other
    why: str  # one line, also the `why` of the pin it leads to
    fix: str = ""  # the next command a user can type, where the host lacks something
    pin: tuple[str, str] | None = None  # a pin to retry the same candidate with
    needs: tuple[tuple[str, str], ...] = ()  # packages to retry the same candidate with (its code imports them)
    below: str | None = None  # the first Python without what it needs (a stdlib name or module it removed)
    extras: tuple[str, ...] = ()  # the package's extras to retry the same candidate with, one at a time


# numpy's ABI errors: built against another numpy than it runs with (the derived checks read it too)
_NUMPY_BUILD = r"numpy\.ndarray has the wrong size, try recompiling"
_NUMPY_1X = r"numpy\.core\.multiarray failed to import|compiled using NumPy 1\.x cannot be run in" \
            r"|numpy\.dtype size changed|_ARRAY_API not found"
NUMPY_ABI = f"{_NUMPY_BUILD}|{_NUMPY_1X}"

_RULES: tuple[tuple[str, str, str], ...] = (
    # (kind, pattern, why): the first that matches the output wins
    ("numpy-build", _NUMPY_BUILD, "compiled against another numpy than the one it runs with (numpy ABI mismatch)"),
    ("numpy-abi", _NUMPY_1X, "built against numpy 1.x: the newest numpy breaks its import (numpy ABI mismatch)"),
    ("pkg-resources", r"No module named '?pkg_resources'?",
     "imports pkg_resources, which setuptools 81 removed"),
    ("header", r"fatal error: ([\w./+-]+\.(?:h|hh|hpp|hxx)): No such file"
               r"|install a library that provides `([\w./+-]+\.(?:h|hh|hpp|hxx))`", "a C header is missing: {0}"),
    ("compiler", r"command '(\w*(?:gcc|cc|g\+\+|clang)\w*)' failed|error: (?:Microsoft Visual C\+\+|unable to find vcvarsall)"
                 r"|No such file or directory: '(?:gcc|cc|g\+\+)'", "a build needs a C compiler ({0})"),
    ("rust", r"can't find Rust compiler|rustc.*not found|cargo.*not found", "a build needs the Rust compiler"),
    ("jvm", r"JAVA_HOME|No Java runtime|JVM DLL not found|libjvm", "it needs a Java runtime (JVM)"),
    # a shared library the host lacks, loaded by its code (ctypes, a compiled module): no env installs it
    ("library", r"(lib[\w+-]+\.so[\w.]*): cannot open shared object file|The '([\w+-]+)' C library was not found"
                r"|(?:failed|unable|could not) to find (lib[\w+-]+)|cannot find (lib[\w+-]+)",
     "it needs the shared library {0}, which this host lacks"),
    # what its code downloads while it runs (a model, NLTK data), from a host this one cannot reach
    ("network", r"needs the spaCy model|Max retries exceeded with url|NewConnectionError|urlopen error|URLError"
                r"|socket\.gaierror|requests\.exceptions\.ConnectionError|downloads what this host cannot reach",
     "it downloads from {0} while it runs, and this host cannot reach it"),
    # uv: "hint: Wheels are required for `cytoolz` because building from source is disabled ...",
    # "hint: You require CPython 3.13 (`cp313`), but we only found wheels for `torch` (v1.3.1) with ..."
    ("no-wheels", r"wheels are required for `?([\w.-]+)`?|([\w.-]+)==[\w.]+ has no (?:usable|compatible) wheels"
                  r"|we only found wheels for `([\w.-]+)`",
     "no wheel of {0} fits this Python (and builds are off)"),
    ("no-wheels", r"has no wheels with a matching Python|no matching distribution|only has (?:an )?sdist"
                  r"|Requires-Python|requires-python", "no release files fit this Python"),
    ("undeclared", r"undeclared dependency: ([\w.]+) is imported", "its code imports {0} but does not require it"),
    ("api", r"reads ([\w.]+), which this env lacks", "its code reads {0}, which is gone from this env's {1}"),
    ("import", r"ImportError|ModuleNotFoundError|AttributeError|cannot import name",
     "its import fails with the newest dependencies"),
)

# The host a failed download named, near the error: "HTTPSConnectionPool(host='s3.amazonaws.com', ...",
# nltk's "[nltk_data] ... for host\n[nltk_data]     'raw.githubusercontent.com'", a URL.
_HOST = re.compile(r"host[=\s]*(?:\[nltk_data\]\s*)?'([\w.-]+)'|https?://([\w.-]+)")

# Extras a failure may be retried with: not those for developing the package itself, nor all of them
# at once (two backends of one kind conflict: fugashi[unidic] needs a download, fugashi[unidic-lite] not).
_EXTRAS = re.compile(r"^extras it declares: (.*)$", re.M)
_NOT_TRIED = re.compile(r"(?:dev|devel|develop|tests?|testing|docs?|documentation|lint|linting|typing|types|mypy"
                        r"|style|format|quality|checks?|cov|coverage|bench|benchmarks?|release|build|ci|all|complete"
                        r"|pre-?commit)(?:[-_.].*)?", re.I)
MAX_EXTRAS = 4

# Names numpy removed, and the numpy that still has them (an `api` diagnosis pins it).
_GONE_FROM_NUMPY = (
    ({f"numpy.{n}" for n in ("float", "int", "bool", "object", "str", "complex", "long", "unicode")}, "numpy<1.24"),
    ({"numpy.asscalar"}, "numpy<1.23"),
    ({f"numpy.{n}" for n in ("NaN", "NAN", "Inf", "PINF", "NINF", "infty", "Infinity", "float_", "complex_", "string_",
                             "unicode_", "cast", "product", "cumproduct", "sometrue", "alltrue", "round_", "asfarray",
                             "find_common_type", "source", "deprecate", "safe_eval", "msort", "trapz", "in1d",
                             "row_stack", "issubclass_", "mat")}, "numpy<2"),
)

# Stdlib names and modules that later Pythons removed, by the first Python without them: a failure on
# one moves the search to an older Python with the same dependencies, not to an older date. The
# derived checks read the same table (search.derived_checks hands it over).
REMOVED_FROM_PYTHON = {
    "3.7": ("os.errno",),
    "3.8": ("time.clock", "cgi.escape", "cgi.parse_qs", "cgi.parse_qsl", "platform.linux_distribution", "platform.dist",
            "platform.popen"),
    "3.9": ("base64.encodestring", "base64.decodestring", "fractions.gcd", "xml.etree.cElementTree",
            "sys.setcheckinterval", "sys.getcheckinterval"),
    "3.10": tuple(f"collections.{n}" for n in (
        "Mapping", "MutableMapping", "Sequence", "MutableSequence", "Iterable", "Iterator", "Callable", "Set",
        "MutableSet", "Hashable", "Sized", "Container", "Generator", "KeysView", "ItemsView", "ValuesView",
        "MappingView", "Awaitable", "Coroutine", "AsyncIterable", "AsyncIterator", "ByteString"))
    + ("asyncio.async", "formatter", "parser", "symbol"),
    "3.11": ("inspect.getargspec", "inspect.formatargspec", "inspect.getmoduleinfo", "asyncio.coroutine", "binhex",
             "gettext.lgettext", "gettext.ldgettext", "gettext.lngettext", "gettext.ldngettext",
             "gettext.bind_textdomain_codeset"),
    "3.12": ("distutils", "imp", "asynchat", "asyncore", "smtpd", "configparser.SafeConfigParser", "locale.format",
             "ssl.wrap_socket", "ssl.match_hostname"),
    "3.13": ("cgi", "cgitb", "crypt", "pipes", "telnetlib", "nntplib", "audioop", "aifc", "chunk", "imghdr", "sndhdr",
             "sunau", "uu", "xdrlib", "msilib", "nis", "ossaudiodev", "spwd", "mailcap", "lib2to3",
             "unittest.makeSuite", "unittest.findTestCases", "typing.io", "typing.re"),
    "3.14": ("typing.ByteString",),
}


def _python_without(failure: str) -> tuple[str, str] | None:
    """(the first Python without it, the name) for a stdlib name a failure reads ("inspect.getargspec")
    or a module it cannot import ("No module named 'imp'"), else None."""
    m = re.match(r"\S*(?:Error|Exception)?:?\s*(?:No module named '([\w.]+)'|cannot import name '\w+' from '(\w+)')",
                 failure)
    name = (m.group(1) or m.group(2)) if m else failure.strip()
    return next(((minor, name) for minor, names in REMOVED_FROM_PYTHON.items() if name in names), None)


# The distribution that provides a module, where the names differ (an undeclared dependency's install).
_DISTRIBUTION_OF = {"sklearn": "scikit-learn", "cv2": "opencv-python-headless", "PIL": "pillow", "yaml": "pyyaml",
                    "bs4": "beautifulsoup4", "skimage": "scikit-image", "Bio": "biopython", "dateutil": "python-dateutil",
                    "Crypto": "pycryptodome", "icu": "pyicu", "tensorflow_hub": "tensorflow-hub", "google.protobuf": "protobuf"}

# What the host's OS can install, by OS (host.os): the fix a diagnosis names when the host lacks a tool.
_FIXES = {
    "linux": {
        "compiler": "install a C compiler: sudo apt-get install build-essential (Debian/Ubuntu)",
        "rust": "install Rust: curl https://sh.rustup.rs -sSf | sh (or your OS's rustc and cargo)",
        "jvm": "install Java: sudo apt-get install default-jre (Debian/Ubuntu), then set JAVA_HOME",
        "header": "install the development package that has {0}: find it with `apt-file search {0}` (Debian/Ubuntu)",
        "library": "install the system package that has {0}: find it with `apt-file search {0}` (Debian/Ubuntu)",
    },
    "macos": {
        "compiler": "install the command line tools: xcode-select --install",
        "rust": "install Rust: curl https://sh.rustup.rs -sSf | sh (or brew install rust)",
        "jvm": "install Java: brew install openjdk, then set JAVA_HOME",
        "header": "install the library that has {0} (e.g. with Homebrew), then run the command again",
        "library": "install the library {0} (e.g. with Homebrew), then run the command again",
    },
    "windows": {
        "compiler": "install the Microsoft C++ Build Tools (https://visualstudio.microsoft.com/visual-cpp-build-tools/)",
        "rust": "install Rust: https://rustup.rs",
        "jvm": "install a Java runtime (e.g. winget install Microsoft.OpenJDK.21), then set JAVA_HOME",
        "header": "install the library that has {0}, then run the command again",
        "library": "install the library {0} and put its DLL on PATH, then run the command again",
    },
}

# The same on every OS: what no install here provides.
_ANY_OS = {
    "network": "no env verifies on this host: try it where {0} is reachable, or put what it downloads into "
               "its cache there first (a model, a corpus) and copy that cache here",
}

# Headers of another OS: no package of this one provides them, so no build of that code works here.
_FOREIGN_HEADERS = {
    "linux": ("sys/endian.h", "machine/", "libkern/", "mach/", "mach-o/", "malloc/malloc.h", "CoreFoundation/",
              "windows.h", "io.h", "direct.h"),
    "macos": ("linux/", "endian.h", "malloc.h", "features.h", "byteswap.h", "windows.h", "io.h"),
    "windows": ("unistd.h", "sys/endian.h", "linux/", "machine/", "libkern/", "mach/", "pthread.h", "dlfcn.h"),
}
_OS_LABEL = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}


def foreign_header(header: str, os_name: str) -> bool:
    """Whether a missing header is one of another OS's (sys/endian.h on Linux): no package installs it."""
    return any(header == h or (h.endswith("/") and header.startswith(h)) for h in _FOREIGN_HEADERS.get(os_name, ()))


def diagnose(text: str, os_name: str = "linux", newest: bool = True) -> Diagnosis:
    """The first rule that matches a failure's output; `os_name` (host.os) picks the fix it names,
    `newest`: whether the attempt had the newest dependencies (no cutoff)."""
    fixes = _FIXES.get(os_name, _FIXES["linux"])
    extras = tuple(e for m in _EXTRAS.finditer(text) for e in m.group(1).replace(" ", "").split(",")
                   if e and not _NOT_TRIED.fullmatch(e))[:MAX_EXTRAS]
    text = _EXTRAS.sub("", text).rstrip()
    for kind, pattern, why in _RULES:
        if m := re.search(pattern, text, re.I if kind in ("no-wheels", "rust") else 0):
            found = next((g for g in m.groups() if g), "") if m.groups() else ""
            if kind == "library" and not found.startswith("lib"):  # "The 'enchant' C library": libenchant
                found = f"lib{found}"
            if kind == "network":  # the host it could not reach, named near the error
                near = _HOST.search(text, text.rfind("\n", 0, m.start()) + 1, m.end() + 400)
                found = next((g for g in near.groups() if g), "") if near else "the network"
                if model := re.search(r"needs the spaCy model ([\w.-]+) \(for ([^)]+)\)", text):
                    return Diagnosis(kind, one_line(f"it needs the spaCy model {model.group(1)} (for {model.group(2)}), "
                                                    f"which spacy downloads from {found}, and this host cannot reach it"),
                                     f"install it again where {found} is reachable (the model is fetched into the "
                                     f"env there), or install {model.group(1)}'s wheel from "
                                     "https://github.com/explosion/spacy-models/releases into the env yourself")
                if data := re.search(r"needs NLTK data ([\w., -]+?) \(for ([^)]+)\)", text):  # the derived checks' words
                    names = data.group(1).split(", ")
                    return Diagnosis(kind, one_line(f"it needs NLTK data {data.group(1)} (for {data.group(2)}), which nltk "
                                                    f"downloads from {found}, and this host cannot reach it"),
                                     f"download {'it' if len(names) == 1 else 'them'} where {found} is reachable: "
                                     f"python -m nltk.downloader -d nltk_data {' '.join(names)}; copy that nltk_data "
                                     "folder to ~/nltk_data here, then run the command again")
            why = why.format(found or ("gcc" if kind == "compiler" else "a dependency"), found.split(".")[0])
            fix = fixes.get(kind, _ANY_OS.get(kind, "")).format(found)
            if kind == "header" and foreign_header(found, os_name):
                why = f"{why}, a header {_OS_LABEL.get(os_name, os_name)} does not have: only a release or Python with wheels works here"
                fix = ""  # no package provides it: the next command is an older release or Python (see next_command)
            if kind == "import":  # the error itself (from its name on: not the check's label), without the env's paths
                line = text[m.start():].split("\n", 1)[0].strip()
                why = f"{why if newest else 'its import fails'}: {line.split(' (/')[0][:160]}"
            pin = ("numpy<2", why) if kind == "numpy-abi" else None
            # setuptools < 81 has pkg_resources; a package, not a pin: an env need not have setuptools at all
            needs = (("setuptools<81", one_line(why)),) if kind == "pkg-resources" else ()
            if kind == "undeclared":  # and the other modules nothing provides that its modules import
                also = re.search(r"also imported by its modules: ([\w., ]+)", text)
                needs = tuple((_DISTRIBUTION_OF.get(mod, mod.replace("_", "-")), one_line(why)) for mod in
                              [found, *(also.group(1).replace(" ", "").split(",") if also else ())] if mod)
            if kind == "api" and (gone := next((cap for names, cap in _GONE_FROM_NUMPY if found in names), None)):
                pin = (gone, one_line(why))  # the numpy that still has it: retried before any older date
            below = _python_without(found if kind == "api" else text[m.start():] if kind == "import" else "")
            if below:
                why = f"its code needs {below[1]}, which Python {below[0]} removed"
            return Diagnosis(kind, one_line(why), fix, pin, needs, below[0] if below else None)
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip() and not _UNDONE.fullmatch(line.strip())),
                "no output")
    return Diagnosis("other", one_line(last), extras=extras)


# What the install transaction appends to a failure's message once it rolled back: not a diagnosis.
_UNDONE = re.compile(r"(?:the previous env is back in place|nothing was left behind|nothing else changed)"
                     r"(?:; the failed env is kept at .*)?")


def one_line(why: str) -> str:
    """A diagnosis as one clean line: its first line, without the rollback's note, at most 200 characters."""
    line = next((x.strip() for x in why.splitlines() if x.strip()), "")
    line = re.sub(r";\s*" + _UNDONE.pattern + r"$", "", line).strip()
    return line[:200] or "no output"
