"""The checks of what a package does when used, run in the candidate env with derivedchecks.py
(search.derived_checks puts this file's text before that one's, whose helpers it calls): the NLTK
data its code needs, and the first example of its description (README) that imports it.

Never imported by nlpsetup: stdlib only, Python 3.6 syntax, as derivedchecks.py.
"""
# ruff: noqa: UP021, UP031, UP032, F821

import ast
import contextlib
import glob
import io
import os
import re
import subprocess
import sys
import tempfile
import textwrap

# NLTK data: nltk raises LookupError until its data is downloaded (nltk.download), which most packages
# leave to their users. What a package's code calls is exercised; what is missing is downloaded into
# the env (sys.prefix/share/nltk_data, on nltk's own path), where the host can reach nltk's index.
NLTK_CALLS = {"word_tokenize": "tokenize", "sent_tokenize": "tokenize", "pos_tag": "pos_tag",
              "SentimentIntensityAnalyzer": "vader"}
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # nltk colours the name of what it lacks
_NLTK_MISSING = re.compile(r"Resource '?([\w.-]+)'? not found|nltk\.download\('([\w.-]+)'\)")


def missing_nltk(text):
    """The NLTK data a LookupError (or a program's output) says is missing, else None."""
    m = _NLTK_MISSING.search(_COLOURS.sub("", text))
    return (m.group(1) or m.group(2)) if m else None


def literal(node):
    if type(node).__name__ == "Constant" and isinstance(getattr(node, "value", None), str):
        return node.value
    return node.s if type(node).__name__ == "Str" else None


def nltk_uses(files):
    """(the nltk.corpus readers, the calls of NLTK_CALLS, the data names in download/find/load calls)
    that the package's code uses, from its source; all empty where it does not import nltk."""
    corpora, calls, names = set(), set(), set()
    for f in files:
        try:
            text = open(f, encoding="utf-8").read()
            tree = ast.parse(text) if "nltk" in text else None
        except (SyntaxError, ValueError, OSError, UnicodeDecodeError):
            continue
        if tree is None:
            continue
        optional = opt_in_lines(tree)
        for module, attrs, line in references(tree):
            if root(module) != "nltk" or line in optional:
                continue
            full = (module + "." + ".".join(attrs)).split(".")
            if "corpus" in full[:-1] and full.index("corpus") + 1 < len(full):
                corpora.add(full[full.index("corpus") + 1])
            calls.update(NLTK_CALLS[a] for a in full if a in NLTK_CALLS)
        bare = re.search(r"from nltk(?:\.downloader)? import [^\n]*\bdownload\b", text)
        for node in ast.walk(tree):
            chain = dotted(node.func) if isinstance(node, ast.Call) else None
            if chain and chain[-1] in ("download", "find", "load") and node.lineno not in optional and (
                    chain[0] == "nltk" or chain == ["download"] and bare):
                for arg in node.args[:1]:
                    for item in getattr(arg, "elts", [arg]):
                        value = literal(item)
                        if value and re.match(r"^[\w/.-]+$", value):
                            names.add(re.sub(r"\.(zip|pickle)$", "", value.split("/")[1] if "/" in value else value))
    return corpora, calls, names


def opt_in_lines(tree):
    """The lines of code that runs only when a flag is set (the body of `if self._split_summaries:`,
    a bare name or attribute): an option's path, not the default one (rouge-score's sentence
    splitting). The else of such an if is the default (rake-nltk: `if stopwords: ... else: nltk...`)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, (ast.Name, ast.Attribute)):
            lines.update(getattr(n, "lineno", 0) for part in node.body for n in ast.walk(part))
    lines.discard(0)
    return lines


def nltk_data(files):
    """Exercise the NLTK data the package's code uses, downloading what is missing into the env; the
    names it needed, or an AssertionError naming what could not be had (and why)."""
    if NAME == "nltk":  # nltk itself: its data is for what its users call
        return []
    corpora, calls, names = nltk_uses(files)
    if not (corpora or calls or names) or not findable("nltk"):
        return []
    import nltk
    import nltk.corpus

    def find(name):
        for category in ("corpora", "tokenizers", "taggers", "chunkers", "sentiment", "models", "misc", "stemmers"):
            try:
                return nltk.data.find(category + "/" + name)
            except LookupError:
                pass
        raise LookupError("Resource '%s' not found" % name)

    exercise = {"tokenize": ("nltk.word_tokenize", lambda: nltk.word_tokenize("A test. Another one.")),
                "pos_tag": ("nltk.pos_tag", lambda: nltk.pos_tag(["test"])),
                "vader": ("SentimentIntensityAnalyzer",
                          lambda: __import__("nltk.sentiment.vader").sentiment.vader.SentimentIntensityAnalyzer())}
    probes = [exercise[c] for c in sorted(calls)]  # the calls first: what its functions need at once
    probes += [("nltk.corpus." + c, lambda c=c: getattr(nltk.corpus, c).fileids()) for c in sorted(corpora)
               if type(getattr(nltk.corpus, c, None)).__name__ == "LazyCorpusLoader"]
    probes += [("nltk.download('%s') in its code" % n, lambda n=n: find(n)) for n in sorted(names) if n not in corpora]
    needed, missing = [], []  # (name, what needs it, why it could not be had)
    for label, probe in probes:
        for _ in range(3):  # one call may need two resources (pos_tag: a tokenizer and a tagger)
            try:
                probe()
                break
            except LookupError as exc:
                name = missing_nltk(str(exc))
                if not name:
                    raise
                error = fetch_nltk(nltk, name, label)
                if error:  # the rest is probed all the same: the user fetches all of it at once
                    if name not in [x[0] for x in missing]:
                        missing.append((name, label, error))
                    break
                needed.append(name)
            except Exception:
                break  # not a data problem: its own checks judge the package
    if missing:
        raise AssertionError("needs NLTK data %s (for %s), which nltk downloads from %s: %s" % (
            ", ".join(x[0] for x in missing), ", ".join(x[1] for x in missing),
            nltk_index(), missing[0][2]))
    return needed


NLTK_TARGET = os.path.join(sys.prefix, "share", "nltk_data")


def env_nltk_data():
    """The NLTK data downloaded into the env (by nltk_data): its recipe fetches the same."""
    found = glob.glob(os.path.join(NLTK_TARGET, "*", "*"))
    return sorted({re.sub(r"\.zip$", "", os.path.basename(f)) for f in found})


def fetch_nltk(nltk, name, label):
    """Download NLTK data into the env: "" when it came, else why not."""
    target = NLTK_TARGET
    error = ""
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            ok = nltk.download(name, download_dir=target, quiet=True, raise_on_error=True)
        error = out.getvalue().replace("[nltk_data]", " ").replace("\n", " ")
    except Exception as exc:
        ok, error = False, str(exc)
    if not ok:
        return " ".join(error.split())[:300] or "the download failed"
    print("  NLTK data %s downloaded into the env (%s needs it)" % (name, label))
    return ""


# --- its README's first example --------------------------------------------------------------
# A package's own first example is the closest thing to its basic function that nlpsetup can run
# without knowing the package. Only what no install here can give fails the check (a download the
# host cannot make: a model, a corpus); an example that needs the reader's files, runs long or has
# rotted is noted, not failed.
EXAMPLE_S = 60
_LANGS = ("", "python", "python3", "py", "pycon", "ipython", "ipython3", "doctest")
_OFFLINE = re.compile(r"urlopen error|Max retries exceeded|NewConnectionError|Failed to establish a new connection"
                      r"|Temporary failure in name resolution|Name or service not known|socket\.gaierror"
                      r"|ConnectionError|couldn't connect to|OfflineModeIsEnabled|LocalEntryNotFoundError")
_DATASET = re.compile(r'File "[^"]*[/\\]datasets?[/\\][^"]*", line')  # a frame in the package's datasets
_SPACY_MODEL = re.compile(r"\[E050\] Can't find model '([\w.-]+)'")


def description():
    """The package's long description: METADATA's body, else its Description header."""
    text = read("METADATA")
    head, _, body = text.partition("\n\n")
    if body.strip():
        return body
    m = re.search(r"^Description: (.*(?:\n(?:        |\|).*)*)", head, re.M)
    return re.sub(r"\n(?:        |\|)", "\n", m.group(1)) if m else ""


def code_blocks(text):
    """The code blocks of a description, in order: fenced (```python), reST directives
    (.. code-block:: python) and literal blocks (::)."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"\s*(```+|~~~+)\s*\{?\.?([\w+-]*)", line)
        if fence:
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence.group(1)):
                j += 1
            if fence.group(2).lower() in _LANGS:
                blocks.append("\n".join(lines[i + 1:j]))
            i = j + 1
            continue
        directive = re.match(r"\s*\.\. (?:code-block|code|sourcecode)::\s*([\w+-]*)\s*$", line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if directive and directive.group(1).lower() in _LANGS or literal:
            base, j = len(line) - len(line.lstrip()), i + 1
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > base):
                j += 1
            body = [x for x in lines[i + 1:j] if not re.match(r"\s*:\w[\w-]*:", x)]  # directive options
            blocks.append(textwrap.dedent("\n".join(body)))
            i = j
            continue
        i += 1
    return blocks


def as_python(block):
    """A block as a program: doctest prompts stripped (their outputs dropped); None if not Python."""
    lines = block.strip("\n").splitlines()
    if any(x.lstrip().startswith(">>>") for x in lines):
        lines = [re.sub(r"^\s*(>>>|\.\.\.) ?", "", x) for x in lines if re.match(r"\s*(>>>|\.\.\.)( |$)", x)]
    code = textwrap.dedent("\n".join(lines))
    try:
        compile(code, "<example>", "exec")
    except (SyntaxError, ValueError):
        return None
    return code


def first_example(tops):
    """The first Python block of its description that imports one of its top-level packages."""
    imports = re.compile(r"^\s*(?:from|import)\s+(?:%s)\b" % "|".join(re.escape(t) for t in tops), re.M)
    for block in code_blocks(description()):
        code = as_python(block)
        if code and imports.search(code):
            return code
    return None


def run_example(tops):
    """Run its first example in a scratch folder: what it needs from a download the host cannot make
    fails (AssertionError); other failures are noted. NLTK data and spaCy models it lacks are
    fetched into the env first, where the host can."""
    code = first_example(tops)
    if code is None:
        print("  not checked: its description has no Python example that imports it")
        return
    for _ in range(4):  # each fetch is followed by another run
        code_, out = run_code(code)
        if code_ is None:
            print("  not checked: its README example ran past %d s" % EXAMPLE_S)
            return
        if code_ == 0:
            print("README example: ran (%d lines)" % len(code.splitlines()))
            return
        if not fetched_for_example(out):
            break
    last = (out.strip().splitlines() or ["exit %d" % code_])[-1]
    model = _SPACY_MODEL.search(out)
    if model:
        raise AssertionError("needs the spaCy model %s (for its README example), which spacy downloads from "
                             "https://github.com/explosion/spacy-models: %s" % (model.group(1), SPACY_ERROR.get("why", last)))
    data = missing_nltk(out)
    if data and NLTK_ERROR.get(data):
        raise AssertionError("needs NLTK data %s (for its README example), which nltk downloads from %s: %s" % (
            data, nltk_index(), NLTK_ERROR[data]))
    offline = _OFFLINE.search(out)
    if offline and _DATASET.search(out):  # pytorch-nlp's README loads IMDB: the example's input, not its function
        print("  not checked: its README example downloads a dataset this host cannot reach: " + last[:200])
        return
    if offline:
        line = next(x for x in out.splitlines() if offline.group(0) in x)
        host = re.search(r"host='([\w.-]+)'|https?://([\w.-]+)", out)  # in the error, else in its traceback's code
        where = " (host='%s')" % (host.group(1) or host.group(2)) if host else ""
        raise AssertionError("its README example downloads what this host cannot reach%s: %s" % (where, line.strip()[:300]))
    print("  not checked: its README example fails: " + last.replace("Error", "error")[:200])


NLTK_ERROR, SPACY_ERROR = {}, {}


def run_code(code):
    """(exit code, output without colours) of a program run in a scratch folder; (None, "") past EXAMPLE_S."""
    with tempfile.TemporaryDirectory(prefix="nlpsetup-example-") as scratch:
        with open(os.path.join(scratch, "example.py"), "w", encoding="utf-8") as f:
            f.write(code)
        try:
            r = subprocess.run([sys.executable, "example.py"], cwd=scratch, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, universal_newlines=True,
                               timeout=EXAMPLE_S, env=dict(os.environ, MPLBACKEND="Agg"))
        except subprocess.TimeoutExpired:
            return None, ""
    return r.returncode, _COLOURS.sub("", r.stdout)


def example_that_runs(tops):
    """Its first example, where it runs in the env as it is now (for the recipe's smoke check)."""
    code = first_example(tops)
    return code if code is not None and run_code(code)[0] == 0 else None


def nltk_index():
    try:
        import nltk.downloader
        return nltk.downloader.Downloader.DEFAULT_URL
    except Exception:
        return "its index"


def fetched_for_example(out):
    """Fetch what the example's failure names (NLTK data, a spaCy model) into the env: whether it
    came, so the example runs again."""
    data = missing_nltk(out)
    if data and data not in NLTK_ERROR:
        import nltk
        NLTK_ERROR[data] = fetch_nltk(nltk, data, "its README example")
        return not NLTK_ERROR[data]
    model = _SPACY_MODEL.search(out)
    if model and "why" not in SPACY_ERROR:
        r = subprocess.run([sys.executable, "-m", "spacy", "download", model.group(1)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
        if r.returncode == 0:
            print("  spaCy model %s downloaded into the env (its README example needs it)" % model.group(1))
            return True
        SPACY_ERROR["why"] = " ".join((r.stdout.strip().splitlines() or ["the download failed"])[-1].split())[:300]
    return False
