"""Loading recipes: TOML text or a file into a checked Recipe (every problem in it reported at once,
each naming the key and, where it can be found, the line), and the folders of recipe files into a
RecipeBook, where user folders override the shipped recipes and broken files are set aside.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from nlpsetup.base.errors import NlpsetupError, RecipeError
from nlpsetup.base.files import NotAFile, read_regular
from nlpsetup.base.redact import escape_controls
from nlpsetup.recipes.model import Recipe
from nlpsetup.recipes.schema import check_document

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_RECIPE_BYTES = 1_000_000  # a recipe is a page of text; anything near this is not one


def parse(text: str, path: str, *, stem: str | None = None) -> Recipe:
    """Parse and validate one recipe document; raise RecipeError listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(path, [f"not valid TOML: {exc}"]) from None
    except RecursionError:
        raise RecipeError(path, ["not a recipe: nested too deeply"]) from None
    top, variants, problems = check_document(doc, stem)
    if problems:
        raise RecipeError(path, [_with_line(text, k, msg) for k, msg in problems])
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Recipe(
        name=top["name"],
        summary=top["summary"],
        homepage=top["homepage"],
        status=top["status"],
        variants=variants,
        aliases=top.get("aliases", ()),
        notes=top.get("notes", ""),
        history=top.get("history", ""),
        path=path,
        digest=digest,
    )


_KEY_PART = re.compile(r"([A-Za-z0-9_-]+)(?:\[(\d+)\])?")


def _with_line(text: str, key: str, message: str) -> str:
    """Prefix a problem with its line where the key can be found in the text."""
    line = _line_of(text, key)
    where = f"line {line}: " if line else ""
    return f"{where}{key or 'file'}: {message}" if key else f"{where}{message}"


def _line_of(text: str, key: str) -> int | None:
    """A best-effort line for a dotted key path such as variants[1].smoke.timeout."""
    if not key:
        return None
    lines = text.splitlines()
    start = 0
    parts = [m.groups() for m in _KEY_PART.finditer(key)]
    if parts and parts[0][0] == "variants" and parts[0][1] is not None:
        n = int(parts[0][1])
        headers = [i for i, ln in enumerate(lines) if re.match(r"\s*\[\[\s*variants\s*\]\]", ln)]
        if n < len(headers):
            start = headers[n]
        parts = parts[1:]
    if not parts:
        return start + 1 if start else None
    leaf = parts[-1][0]
    for i in range(start, len(lines)):
        if re.match(rf"\s*\"?{re.escape(leaf)}\"?\s*=", lines[i]) or re.match(rf"\s*\[.*\b{re.escape(leaf)}\]", lines[i]):
            return i + 1
    for i in range(start, len(lines)):  # a key inside an inline table: env = { PIP_TARGET = "..." }
        if re.search(rf"[{{,]\s*\"?{re.escape(leaf)}\"?\s*=", lines[i]):
            return i + 1
    return start + 1 if start else None


def load_file(path: Path) -> Recipe:
    p = str(path)
    try:
        data = read_regular(path, MAX_RECIPE_BYTES)  # never blocks on a FIFO nor reads /dev/zero forever
    except NotAFile as exc:
        raise RecipeError(p, [f"not a recipe: the file {exc}"]) from None
    except OSError as exc:
        raise RecipeError(p, [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(p, [f"not UTF-8 text (byte {exc.start})"]) from None
    return parse(text, p, stem=path.stem)


@dataclass(frozen=True)
class RecipeBook:
    recipes: dict[str, Recipe]
    aliases: dict[str, str]
    broken: tuple[RecipeError, ...] = ()
    shadowed: dict[str, str] = field(default_factory=dict)  # name -> the file a user folder overrides

    def find(self, name: str) -> Recipe | None:
        key = canonicalize_name(name)
        if key in self.recipes:
            return self.recipes[key]
        target = self.aliases.get(key)
        return self.recipes.get(target) if target else None

    def get(self, name: str) -> Recipe:
        """The recipe for a tool name or alias, or an error that suggests close names."""
        recipe = self.find(name)
        if recipe is None and (err := self.broken_for(name)) is not None:
            raise err  # the user's recipe for this very tool: its problem, not "unknown tool"
        if recipe is None:
            close = self.suggest(name)
            hint = f"did you mean {' or '.join(close)}?" if close else "see the tools with: nlpsetup list"
            raise NlpsetupError(f"unknown tool {name!r}", hint=hint)
        return recipe

    def broken_for(self, name: str) -> RecipeError | None:
        """The error of a broken recipe file named after this tool (NAME.toml), if one was skipped."""
        key = canonicalize_name(name)
        return next((e for e in self.broken if canonicalize_name(Path(e.path).stem) == key), None)

    def pick(self, names) -> list[Recipe]:
        """The named recipes, or every recipe when none is named."""
        return [self.get(n) for n in names] if names else list(self.recipes.values())

    def warnings(self) -> list[str]:
        return [escape_controls(f"nlpsetup: warning: skipped broken recipe {err.message}") for err in self.broken]

    def override_note(self, name: str) -> str | None:
        """One line saying where a tool's recipe comes from, when a user folder overrides another."""
        recipe = self.find(name)
        if recipe is None or (hidden := self.shadowed.get(canonicalize_name(recipe.name))) is None:
            return None
        return escape_controls(f"nlpsetup: note: {recipe.name} is built from {recipe.path} (NLPSETUP_RECIPES_PATH), "
                               f"not from {hidden}")

    def suggest(self, name: str) -> list[str]:
        import difflib

        return difflib.get_close_matches(canonicalize_name(name), [*self.recipes, *self.aliases], n=3, cutoff=0.6)


def load_book(dirs: list[Path]) -> RecipeBook:
    """Every recipe from the folders, earlier folders overriding later ones; broken files are
    collected, not fatal to the others."""
    recipes: dict[str, Recipe] = {}
    shadowed: dict[str, str] = {}
    broken: list[RecipeError] = []
    for d in reversed(dirs):  # later folders first, so earlier ones override them
        try:
            files = sorted(d.glob("*.toml"))
        except OSError:
            continue
        for f in files:
            try:
                r = load_file(f)
            except RecipeError as exc:
                broken.append(exc)
                continue
            key = canonicalize_name(r.name)
            if key in recipes:
                shadowed[key] = recipes[key].path
            recipes[key] = r
    aliases: dict[str, str] = {}
    for key, r in recipes.items():
        for a in r.aliases:
            if canonicalize_name(a) not in recipes:
                aliases[canonicalize_name(a)] = key
    return RecipeBook(recipes=dict(sorted(recipes.items())), aliases=aliases, broken=tuple(broken), shadowed=shadowed)


def check_files(files) -> list[tuple[str, Recipe | RecipeError]]:
    """Each file with its recipe, or with the error listing every problem in it."""
    out: list[tuple[str, Recipe | RecipeError]] = []
    for f in files:
        try:
            out.append((f, load_file(Path(f))))
        except RecipeError as exc:
            out.append((f, exc))
    return out


def targets(book: RecipeBook, names: list[str]) -> list[Recipe]:
    """Tool names or recipe files (`recipe test`); every recipe when none is given."""
    return [load_file(Path(t)) if t.endswith(".toml") else book.get(t) for t in names] if names else book.pick(())
