"""The checks a discovery derives for a package no recipe covers, run in the candidate env.

Never imported by nlpsetup: search.derived_checks() puts NAME, REMOVED and NUMPY_ABI_PATTERN above
this file's text and the smoke harness execs it in the env's own interpreter (as old as Python 3.6: stdlib only, 3.6 syntax).
It checks, in order:
  1. every top-level package the distribution installed imports (top_level.txt, else RECORD; no
     tests, no private modules);
  2. their submodules import too (within a time and count budget): a dependency's removed API often
     breaks only a module the top level does not import;
  3. no module attribute the package's code reads from another distribution or the stdlib is missing
     from this env (`np.float`, `collections.Mapping`, `from sklearn.externals import joblib`), read
     from its source with `ast`: a call that would fail at run time although every import passed;
  4. no module that nothing in the env provides is imported by most of its modules (or its top
     level): a dependency its requirements forgot (pytorch-nlp's torch), which the search then adds;
  5. each console script runs with --help, and `pip check` is clean;
  6. what it does when used (usechecks.py, whose text comes first): the NLTK data its code needs,
     and the first example of its README.
A failure ends with the extras the distribution declares: what it lacks may come with one.
Only drift fails 2 and 3, since another env (an older date or Python) can fix it: a name another
distribution or the stdlib no longer has, pkg_resources, a removed stdlib module, `async` as a name.
An optional dependency that is not installed, Python 2 leftovers, the package's own slips and what
the host lacks (data, network, devices) are reported, not failed: no other env would fix them.
With NLPSETUP_DERIVE=1 it only prints what it would check (imports, commands), as JSON.
"""
# Python 3.6 syntax: ruff's upgrades (target py310) are not for this file.
# ruff: noqa: UP021, UP031, UP032, F821

import ast
import glob
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import subprocess
import sys
import time

SKIP = {"test", "tests", "testing", "conftest", "docs", "examples", "benchmarks", "setup", "__main__"}
BUDGET_S, MAX_MODULES = 90.0, 400
# What later Pythons removed (REMOVED, from diagnosis.py): a module (importing one is Python drift),
# or a module's name (reading one is; other stdlib names that are missing are Python 2 leftovers,
# which no Python 3 env has). pkg_resources went with setuptools 81.
GONE_MODULES = {n for n in REMOVED if "." not in n} | {"pkg_resources"}
GONE_STDLIB = {}
for _gone in REMOVED:
    if "." in _gone:
        GONE_STDLIB.setdefault(_gone.rsplit(".", 1)[0], set()).add(_gone.rsplit(".", 1)[1])
NUMPY_ABI = re.compile(NUMPY_ABI_PATTERN)
GUARDS = {"version_info", "version", "__version__", "hexversion", "PY2", "PY3", "PY36", "PY37", "PY38",
          "hasattr", "getattr", "platform", "TYPE_CHECKING", "IS_PY2", "IS_PY3", "PY34", "PY35", "parse_version"}


def dist_info():
    for d in sys.path:
        for p in glob.glob(os.path.join(d or ".", "*.dist-info")):
            base = os.path.basename(p)[:-len(".dist-info")].rsplit("-", 1)[0]
            if re.sub(r"[-_.]+", "_", base).lower() == NAME:
                return p
    raise AssertionError("no .dist-info for " + NAME + " in the env")


INFO = dist_info()


def declared_extras():
    """The extras the distribution declares (its METADATA's Provides-Extra): what a failure lacks may
    come with one (fugashi's dictionary with fugashi[unidic-lite]); the search picks which to try."""
    return [line.split(":", 1)[1].strip() for line in read("METADATA").splitlines() if line.startswith("Provides-Extra:")]


def read(n):
    f = os.path.join(INFO, n)
    return open(f, encoding="utf-8").read() if os.path.exists(f) else ""


def top_levels():
    tops = read("top_level.txt").split()
    if not tops:
        for line in read("RECORD").splitlines():
            path = line.split(",")[0]
            first = path.split("/")[0]
            if "/" not in path and first.endswith(".py"):
                tops.append(first[:-3])
            elif "/" in path and not first.endswith((".dist-info", ".data")) and path.endswith("/__init__.py"):
                tops.append(first)
    return sorted({t for t in tops if t.isidentifier() and not t.startswith("_") and t not in SKIP})


def console_scripts():
    """{script name: its target, "module:function"}."""
    scripts, section = {}, False
    for line in read("entry_points.txt").splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s == "[console_scripts]"
        elif section and "=" in s:
            name, _, target = s.partition("=")
            scripts[name.strip()] = target.split("[")[0].strip()
    return scripts


def resolves(target):
    """Whether a script's target exists (a recipe names only the scripts that can run)."""
    module, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return True
    except (Exception, SystemExit):
        return False


def root(name):
    return (name or "").split(".")[0]


def skipped(dotted, private=True):
    last = dotted.rsplit(".", 1)[-1]
    return private and last.startswith("_") or last in SKIP or last.startswith("test_") or last.endswith("_test")


def stdlib_name(module):
    """Whether a module (by name) is the stdlib's."""
    if module in sys.builtin_module_names:
        return True
    mod = sys.modules.get(module)
    return mod is not None and is_stdlib(mod)


def gone_from(module, name):
    """Whether a name read from a module is drift: any missing name of another distribution; of the
    stdlib only the names later Pythons removed (other misses are Python 2 leftovers: no Python 3 env
    has them)."""
    if root(module) in own_tops or not module:
        return False
    if stdlib_name(root(module)):
        return name in GONE_STDLIB.get(module, ())
    return True


def drift(exc):
    """Whether an import's failure is drift (another env fixes it), not an optional extra or the
    package's own slip."""
    text = str(exc)
    if NUMPY_ABI.search(text):
        return True
    if isinstance(exc, SyntaxError):  # async and await became keywords in 3.7; other syntax errors are
        return bool(re.search(r"\b(async|await)\b", str(exc.text or "")))  # Python 2's (print x), or slips
    if isinstance(exc, ImportError):
        missing = getattr(exc, "name", None) or ""
        if root(missing) in GONE_MODULES or missing in REMOVED:
            return True
        m = re.search(r"cannot import name '?(\w+)'?(?: from '([\w.]+)')?", text)
        if m:
            return gone_from(m.group(2) or missing, m.group(1))
        # a submodule that an installed distribution no longer has (sklearn.externals.joblib)
        return (isinstance(exc, ModuleNotFoundError) and "." in missing and root(missing) not in own_tops
                and findable(root(missing)) and not stdlib_name(root(missing)))
    m = re.search(r"module '([\w.]+)' has no attribute '(\w+)'", text)
    return isinstance(exc, AttributeError) and bool(m) and gone_from(m.group(1), m.group(2))


def not_installed(exc):
    """The top-level module an import failed for because nothing in the env provides it, else None."""
    missing = getattr(exc, "name", None) or ""
    if not isinstance(exc, ModuleNotFoundError) or not missing or root(missing) in own_tops:
        return None
    return None if findable(root(missing)) else root(missing)


def describe(exc):
    return type(exc).__name__ + ": " + (str(exc).strip().splitlines() or [""])[0][:200]


def import_submodules(tops, deadline):
    """Imports the submodules of each top-level package: (imported count, drift, other failures,
    {a module nothing in the env provides: the submodules that import it})."""
    count, broken, other, absent = 0, [], [], {}
    todo = [sys.modules[t] for t in tops if getattr(sys.modules.get(t), "__path__", None)]
    while todo:
        pkg = todo.pop(0)
        try:
            subs = list(pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."))
        except Exception:
            continue
        for _, sub, ispkg in subs:
            if skipped(sub):
                continue
            if time.time() > deadline or count >= MAX_MODULES:
                return count, broken, other, absent
            count += 1
            try:
                mod = importlib.import_module(sub)
            except (Exception, SystemExit) as exc:
                (broken if drift(exc) else other).append("%s (importing %s)" % (describe(exc), sub))
                module = not_installed(exc)
                if module:
                    absent.setdefault(module, []).append(sub)
                continue
            if ispkg and getattr(mod, "__path__", None):
                todo.append(mod)
    return count, broken, other, absent


def source_files(tops, private=False):
    """The package's .py files, without tests (and private modules, unless `private`)."""
    files = []
    for t in tops:
        mod = sys.modules.get(t)
        if getattr(mod, "__path__", None):
            for base in mod.__path__:
                for d, dirs, names in os.walk(base):
                    dirs[:] = [x for x in dirs if not skipped(x, not private) and x != "__pycache__"]
                    files += [os.path.join(d, n) for n in names
                              if n.endswith(".py") and (n == "__init__.py" or not skipped(n[:-3], not private))]
        elif getattr(mod, "__file__", "") and mod.__file__.endswith(".py"):
            files.append(mod.__file__)
    return sorted(files)


def guarded_test(test):
    for n in ast.walk(test):
        if isinstance(n, ast.Name) and n.id in GUARDS or isinstance(n, ast.Attribute) and n.attr in GUARDS:
            return True
    return False


def dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def references(tree):
    """(module, [names...], line) for each read of another module's attributes outside a guard (a try,
    or an if on the Python or a version): `import numpy as np ... np.float` gives ("numpy", ["float"])."""
    aliases, refs = {}, []

    def visit(node, guarded):
        if isinstance(node, ast.Try):  # the body and its fallbacks (the handlers) are both guarded
            for part in node.body + node.handlers:
                visit(part, True)
            for part in node.orelse + node.finalbody:
                visit(part, guarded)
            return
        if isinstance(node, (ast.If, ast.IfExp, ast.While)) and guarded_test(node.test):
            guarded = True
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = node.module + "." + a.name
                if not guarded:
                    refs.append((node.module, [a.name], node.lineno))
        elif isinstance(node, ast.Attribute) and not guarded and isinstance(node.ctx, ast.Load):
            chain = dotted(node)
            if chain and chain[0] in aliases:
                refs.append((aliases[chain[0]], chain[1:], node.lineno))
                return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return refs


def missing_name(module, names):
    """The dotted name an env's module lacks (only modules of this env that are imported already; a
    class's or an object's attributes are not checked), else None."""
    obj = sys.modules.get(root(module))
    if obj is None:
        return None
    for name in module.split(".")[1:] + names:
        if not isinstance(obj, type(sys)):
            return None
        full = obj.__name__ + "." + name
        if full in sys.modules:
            obj = sys.modules[full]
            continue
        try:
            if hasattr(obj, name):
                obj = getattr(obj, name)
                continue
        except Exception:
            return None
        if stdlib_name(root(obj.__name__)) or obj.__name__ in GONE_STDLIB:
            return full if gone_from(obj.__name__, name) else None
        return None if findable(full) else full  # (or a submodule not imported yet)
    return None


def is_stdlib(module):
    f = getattr(module, "__file__", None) or ""
    std = os.path.dirname(os.__file__)
    return f.startswith(std + os.sep) and "site-packages" not in f and "dist-packages" not in f


def missing_names(files, deadline):
    """What the package's code (`files`) reads from other modules that this env lacks: [where: name]."""
    found = []
    for path in files:
        if time.time() > deadline:
            break
        try:
            with open(path, "rb") as f:
                tree = ast.parse(f.read(), path)
        except (SyntaxError, ValueError, OSError):
            continue  # a file that is never imported (an import of it was checked above)
        where = os.sep.join(path.split(os.sep)[-2:])
        for module, names, line in references(tree):
            if root(module) in own_tops or not names:
                continue
            if root(module) in GONE_MODULES and root(module) not in sys.modules and not findable(root(module)):
                # imported in a function only (pymorphy2's pkg_resources): the call would fail
                found.append("%s:%d imports %s: No module named '%s'" % (where, line, module, root(module)))
                continue
            gone = missing_name(module, names)
            if gone:
                found.append("%s:%d reads %s, which this env lacks" % (where, line, gone))
    return sorted(set(found))


def findable(module):
    try:
        return importlib.util.find_spec(module) is not None
    except Exception:
        return True  # unknown: not a failure


def own_slip(output):
    """Whether a console script failed on the package's own slip (its entry point names a function
    the package does not have: pyvi's `from pyvi import main`), which no other env fixes."""
    last = (output.strip().splitlines() or [""])[-1]
    m = re.search(r"cannot import name '?\w+'? from '([\w.]+)'|module '([\w.]+)' has no attribute", last)
    return bool(m) and root(m.group(1) or m.group(2)) in own_tops


def also_absent(absent, first):
    """The other modules nothing provides that two or more of its modules import (all found at once,
    not one install each: polyglot needs icu, pycld2, numpy and morfessor)."""
    more = [m for m, subs in sorted(absent.items()) if m != first and len(subs) >= 2]
    return "; also imported by its modules: " + ", ".join(more) if more else ""


def undeclared(absent, count, tops):
    """A module nothing in the env provides that most of the package's modules import (its
    requirements forgot it: pytorch-nlp and torch), as the failure to show, else None."""
    for module, subs in sorted(absent.items(), key=lambda kv: -len(kv[1])):
        if len(subs) >= 3 and 2 * len(subs) >= count:  # (two protobuf modules of sentencepiece's are optional)
            return "undeclared dependency: %s is imported by %d of %s's %d modules (%s) but is not among its requirements%s" % (
                module, len(subs), NAME, count, ", ".join(subs[:3]), also_absent(absent, module))
    return None


def main():
    global own_tops
    tops, scripts = top_levels(), console_scripts()
    if os.environ.get("NLPSETUP_DERIVE") == "1":
        print(json.dumps({"imports": tops, "commands": [n for n, t in scripts.items() if resolves(t)],
                          "nltk_data": env_nltk_data(), "example": example_that_runs(tops)}))
        return
    own_tops = set(tops)
    deadline = time.time() + BUDGET_S
    for t in tops:
        try:
            importlib.import_module(t)
        except ModuleNotFoundError as exc:
            module = not_installed(exc)
            if module:  # the package's own top level needs what it did not declare
                raise AssertionError("undeclared dependency: %s is imported by %s but is not among its requirements (%s)"
                                     % (module, t, describe(exc))) from None
            raise
    count, broken, other, absent = import_submodules(tops, deadline)
    # the first line of the output names the failure: the search diagnoses from it
    if broken:
        raise AssertionError(broken[0] + (" (and %d more)" % (len(broken) - 1) if len(broken) > 1 else ""))
    why = undeclared(absent, count, tops)
    if why:
        raise AssertionError(why)
    files = source_files(tops)
    gone = missing_names(files, deadline)
    if gone:
        raise AssertionError(gone[0] + (" (and %d more)" % (len(gone) - 1) if len(gone) > 1 else ""))
    print("submodules: %d imported, %d not (for reasons no other env fixes); %d source files read"
          % (count - len(other), len(other), len(files)))
    data = nltk_data(source_files(tops, private=True))  # (usechecks.py; textstat calls nltk in a private module)
    if data:
        print("NLTK data its code uses: " + ", ".join(data))
    for why in other[:20]:
        print("  not checked: " + why.replace("Error", "error"))  # not mistaken for a failure's diagnosis
    bindir = os.path.dirname(sys.executable)
    for s in scripts:
        r = subprocess.run([os.path.join(bindir, s), "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=120)
        gone = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", r.stdout)
        if r.returncode != 0 and gone and not findable(root(gone.group(1))) and root(gone.group(1)) not in own_tops:
            raise AssertionError("undeclared dependency: %s is imported by its command %s but is not among its "
                                 "requirements%s" % (root(gone.group(1)), s, also_absent(absent, root(gone.group(1)))))
        if r.returncode != 0 and own_slip(r.stdout):
            print("  not checked: %s --help: its entry point names what the package lacks (%s)"
                  % (s, r.stdout.strip().splitlines()[-1].replace("Error", "error")))
            continue
        assert r.returncode == 0, s + " --help failed: " + r.stdout[-2000:]
    r = subprocess.run([sys.executable, "-m", "pip", "check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    assert r.returncode == 0 or "No module named pip" in r.stdout, "pip check: " + r.stdout[-2000:]
    run_example(tops)  # (usechecks.py)


own_tops = set()
try:
    main()
except Exception as exc:
    extras = declared_extras()
    if not extras:
        raise
    # the extras as the failure's last line (the last lines are what the search reads)
    message = str(exc) if isinstance(exc, AssertionError) else "%s: %s" % (type(exc).__name__, exc)
    raise AssertionError(message + "\nextras it declares: " + ", ".join(extras)) from None
