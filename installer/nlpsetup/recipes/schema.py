"""The recipe schema, defined once as data (`_TOP`, `_VARIANT`, `_SMOKE`): every key, its type and
its check. `check_document` walks a parsed recipe against it, collecting every problem as (key,
message) and building the values (`recipes.model`) where a table is sound; `json_schema` spells the
same tables as JSON Schema. Also the one rule on the variables a recipe (or a lock) may set.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.base.platforms import ARCHES, TARGETS
from nlpsetup.base.platforms import OSES as PLATFORMS
from nlpsetup.recipes.model import Pin, Smoke, Variant

STATUSES = ("active", "unmaintained", "archived")
MAX_TIMEOUT = 6 * 3600
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_CUDA_TAG_RE = re.compile(r"^cu\d{2,3}$")
# Variables a recipe's `env` may not set: each redirects the installer (where pip/uv/virtualenv/git
# read their configuration, which index or proxy they trust, where they write), the interpreter
# (what Python imports first, which stdlib or sysconfig), or the loader (what every process links).
# A recipe says which packages it needs; where they come from and where they go is the user's.
_FORBIDDEN_ENV_PREFIXES = ("PIP_", "UV_", "PYTHON", "_PYTHON", "VIRTUAL_ENV", "VIRTUALENV_", "CONDA_", "MAMBA_",
                           "PYENV", "PIPX_", "LD_", "DYLD_", "GIT_", "XDG_", "NLPSETUP_", "SETUPTOOLS_",
                           "DISTUTILS_", "__PYVENV", "OPENSSL_")  # OPENSSL_CONF/_MODULES/_ENGINES load code
_FORBIDDEN_ENV_NAMES = frozenset({
    "PATH", "HOME", "USERPROFILE", "APPDATA", "LOCALAPPDATA", "NETRC", "TMPDIR", "TMP", "TEMP",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "BASH_ENV", "ENV", "SHELL", "PKG_CONFIG_PATH",
    "GCONV_PATH",  # glibc loads iconv modules from it: a loader redirect like LD_PRELOAD
    "SSLKEYLOGFILE",  # writes every TLS session key, the index's credentials with them, to a file
    "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS",  # resolve the index's host name elsewhere
})


# A checker takes (value, problems, key) and returns the converted value (or None on error).
Checker = Callable[[object, list, str], object]


def _of_type(kind: type, what: str) -> Checker:
    def check(v, problems, key):
        if not isinstance(v, kind):
            problems.append((key, f"must be {what}, got {_tname(v)}"))
            return None
        return v

    return check


_str = _of_type(str, "a string")
_bool = _of_type(bool, "true or false")


def _nonempty_str(v, problems, key):
    s = _str(v, problems, key)
    if s is not None and not s.strip():
        problems.append((key, "must not be empty"))
        return None
    return s


def _timeout(v, problems, key):
    if isinstance(v, bool) or not isinstance(v, int):
        problems.append((key, f"must be a whole number of seconds, got {_tname(v)}"))
        return None
    if not 1 <= v <= MAX_TIMEOUT:
        problems.append((key, f"must be between 1 and {MAX_TIMEOUT} seconds, got {v}"))
        return None
    return v


def _size(v, problems, key):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        problems.append((key, f"must be a non-negative whole number, got {v!r}"))
        return None
    return v


def _list_of(item: Checker, *, nonempty: bool = False) -> Checker:
    def check(v, problems, key):
        if not isinstance(v, list):
            problems.append((key, f"must be a list, got {_tname(v)}"))
            return None
        if nonempty and not v:
            problems.append((key, "must not be empty"))
            return None
        out = [item(x, problems, f"{key}[{i}]") for i, x in enumerate(v)]
        return None if any(x is None for x in out) else tuple(out)

    check.schema = {"type": "array", "items": item.schema, **({"minItems": 1} if nonempty else {})}
    return check


def _text(accept: Callable[[str], object], problem: Callable[[str], str] | None = None,
          base: Checker = _str) -> Checker:
    """A checker of a string: what `accept` makes of it; where accept raises ValueError, the problem
    is `problem(s)`, else the error's own text."""
    def check(v, problems, key):
        s = base(v, problems, key)
        if s is None:
            return None
        try:
            return accept(s)
        except ValueError as exc:
            problems.append((key, problem(s) if problem else str(exc)))
            return None

    return check


def _itself_if(test: Callable[[str], object]) -> Callable[[str], str]:
    """An `accept` for _text: the string itself where test(s) is true and raises no ValueError."""
    def accept(s: str) -> str:
        try:
            ok = test(s)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(s)
        return s

    return accept


def _one_of(choices: tuple[str, ...]) -> Checker:
    check = _text(_itself_if(choices.__contains__), lambda s: f"{s!r} is not one of {', '.join(choices)}")
    check.schema = {"enum": list(choices)}
    return check


def _os_arch_pythons(s: str) -> str:
    """A target: OS-ARCH, or OS-ARCH python<specifier>."""
    pair, _, pythons = s.partition(" python")
    if pair not in TARGETS:
        raise ValueError(f"{pair!r} is not one of {', '.join(TARGETS)}")
    try:
        SpecifierSet(pythons.strip())
    except InvalidSpecifier:
        raise ValueError(f"{s!r}: write OS-ARCH or OS-ARCH python<specifier>, e.g. 'windows-arm64 python>=3.11'") from None
    return s


def _requirement_text(s: str) -> str:
    if s.lstrip().startswith("-"):
        # "--index-url=..." or "-e ." would reach pip as an option, not a package.
        raise ValueError(f"{s!r} starts with '-': a requirement cannot be a pip option")
    try:
        Requirement(s)
    except InvalidRequirement as exc:
        raise ValueError(f"{s!r} is not a valid requirement: {str(exc).splitlines()[0]}") from None
    return s.strip()


def _past_date(s: str) -> str:
    try:
        day = dt.date.fromisoformat(s) if len(s) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"{s!r} is not a date: write YYYY-MM-DD, e.g. '2021-12-31'")
    if day > dt.date.today():
        raise ValueError(f"{s!r} is in the future")
    return s


_target = _text(_os_arch_pythons, base=_nonempty_str)
_specifier = _text(SpecifierSet, lambda s: f"{s!r} is not a valid version specifier (e.g. '>=3.9,<3.12')",
                   base=_nonempty_str)
_requirement = _text(_requirement_text, base=_nonempty_str)
_name = _text(_itself_if(_NAME_RE.fullmatch),
              lambda s: f"{s!r} is not a valid name (lowercase letters, digits, '.', '_', '-')")
_variant_id = _text(_itself_if(_ID_RE.fullmatch),
                    lambda s: f"{s!r} is not a valid variant id (letters, digits, '.', '_', '+', '-')")
_date = _text(_past_date)
_version = _text(_itself_if(Version), lambda s: f"{s!r} is not a version")


def _pin(v, problems, key):
    if isinstance(v, str):
        req = _requirement(v, problems, key)
        return Pin(req) if req else None
    if isinstance(v, dict):
        table = _table(v, problems, key, _PIN)
        return Pin(table["req"], table.get("why", ""), table.get("url", "")) if table and "req" in table else None
    problems.append((key, f"must be a requirement string or a table {{req, why, url}}, got {_tname(v)}"))
    return None


def _str_table(value_check: Checker, key_re: re.Pattern | None = None, what: str = "key") -> Checker:
    def check(v, problems, key):
        if not isinstance(v, dict):
            problems.append((key, f"must be a table, got {_tname(v)}"))
            return None
        out = []
        for k, val in v.items():
            if key_re is not None and not key_re.fullmatch(k):
                problems.append((f"{key}.{k}", f"{k!r} is not a valid {what}"))
                continue
            checked = value_check(val, problems, f"{key}.{k}")
            if checked is not None:
                out.append((k, checked))
        return tuple(out)

    check.schema = {"type": "object", "additionalProperties": value_check.schema,
                    **({"propertyNames": {"pattern": key_re.pattern}} if key_re is not None else {})}
    return check


def forbidden_env(name: str) -> bool:
    upper = name.upper()  # Windows reads variables case-insensitively, and proxies go lower-case too
    return upper in _FORBIDDEN_ENV_NAMES or upper.startswith(_FORBIDDEN_ENV_PREFIXES)


def check_install_env(pairs, where: str) -> None:
    """The same rule as the loader's, for a plan that did not come from a checked recipe."""
    if bad := [k for k, _ in pairs if forbidden_env(k)]:
        raise NlpsetupError(f"{where} sets {', '.join(sorted(set(bad)))}: a recipe may not redirect the "
                            "installer, the interpreter or the loader",
                            hint="remove the variable from the recipe's (or lock's) env table")


def _env_table(v, problems, key):
    pairs = _str_table(_str, _ENV_NAME_RE, "variable name")(v, problems, key)
    if pairs is None:
        return None
    for k, _ in pairs:
        if forbidden_env(k):
            problems.append((f"{key}.{k}", f"{k} redirects the installer, the interpreter or the loader; "
                                           "a recipe may not set it"))
    return None if any(forbidden_env(k) for k, _ in pairs) else pairs


def _framework(v, problems, key):
    pairs = _str_table(_specifier, _NAME_RE, "package name")(v, problems, key)
    return None if pairs is None else tuple((k, str(spec)) for k, spec in pairs)


def _cuda_packages(v, problems, key):
    return _str_table(_str_table(_requirement, _CUDA_TAG_RE, "CUDA build tag (cu102, cu118...)"),
                      _NAME_RE, "package name")(v, problems, key)


def _conda(v, problems, key):
    return _table(v, problems, key, _CONDA)


def _command(v, problems, key):
    return _list_of(_nonempty_str, nonempty=True)(v, problems, key)


def _smoke(v, problems, key):
    t = _table(v, problems, key, _SMOKE)
    if t is None:
        return None
    return Smoke(
        imports=t.get("imports", ()),
        code=t.get("code", ""),
        commands=t.get("commands", ()),
        timeout=t.get("timeout", 300),
        env=t.get("env", ()),
    )


def _any_case(word: str) -> str:
    """A pattern matching word in any case: JSON Schema's (ECMA) patterns have no (?i)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


# The JSON Schema of each leaf checker; combinators (_list_of, _one_of, _str_table) set their
# own, and tables (_table) are spelt out from the same dicts the validator walks.
_str.schema = {"type": "string"}
_nonempty_str.schema = {"type": "string", "pattern": r"\S"}
_bool.schema = {"type": "boolean"}
_timeout.schema = {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT}
_size.schema = {"type": "integer", "minimum": 0}
_specifier.schema = {"type": "string", "pattern": r"\S", "description": "a version specifier, e.g. '>=3.9,<3.12'"}
_requirement.schema = {"type": "string", "pattern": r"^\s*[^-\s]", "description": "a PEP 508 requirement"}
_name.schema = {"type": "string", "pattern": _NAME_RE.pattern}
_variant_id.schema = {"type": "string", "pattern": _ID_RE.pattern}
_version.schema = {"type": "string", "pattern": r"^\d+(\.\d+)*$"}
_date.schema = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$",
                "description": "YYYY-MM-DD: dependencies as uploaded by the end of that day (UTC)"}
_target.schema = {"type": "string", "pattern": "^(" + "|".join(TARGETS) + r")( python\S.*)?$",
                  "description": "OS-ARCH, or OS-ARCH python<specifier> (e.g. 'windows-arm64 python>=3.11')"}
_command.schema = _list_of(_nonempty_str, nonempty=True).schema
_framework.schema = _str_table(_specifier, _NAME_RE).schema
_env_table.schema = {**_str_table(_str, _ENV_NAME_RE).schema, "description": "variables set while installing; "
                     "not PIP_*, UV_*, PYTHON*, PATH, LD_* or others that redirect the installer"}
_env_table.schema["propertyNames"] = {"pattern": _ENV_NAME_RE.pattern, "not": {"anyOf": [
    {"pattern": "^(" + "|".join(map(_any_case, _FORBIDDEN_ENV_PREFIXES)) + ")"},
    {"pattern": "^(" + "|".join(map(_any_case, sorted(_FORBIDDEN_ENV_NAMES))) + ")$"}]}}
_cuda_packages.schema = _str_table(_str_table(_requirement, _CUDA_TAG_RE), _NAME_RE).schema

def _object_schema(table: dict[str, tuple[Checker, bool]]) -> dict:
    return {"type": "object", "additionalProperties": False,
            "properties": {k: check.schema for k, (check, _) in table.items() if check is not None},
            "required": [k for k, (_, required) in table.items() if required]}


_PIN: dict[str, tuple[Checker, bool]] = {"req": (_requirement, True), "why": (_str, False), "url": (_str, False)}
_pin.schema = {"oneOf": [_requirement.schema, _object_schema(_PIN)]}


_CONDA: dict[str, tuple[Checker, bool]] = {
    "channels": (_list_of(_nonempty_str), False),
    "packages": (_list_of(_nonempty_str, nonempty=True), True),
}

# key -> (checker, required)
_SMOKE: dict[str, tuple[Checker, bool]] = {
    "imports": (_list_of(_nonempty_str), False),
    "code": (_str, False),
    "commands": (_list_of(_command), False),
    "timeout": (_timeout, False),
    "env": (_env_table, False),
}

_VARIANT: dict[str, tuple[Checker, bool]] = {
    "id": (_variant_id, False),
    "python": (_specifier, True),
    "python_reason": (_str, False),
    "platforms": (_list_of(_one_of(PLATFORMS), nonempty=True), False),
    "arch": (_list_of(_one_of(ARCHES), nonempty=True), False),
    "targets": (_list_of(_target, nonempty=True), False),
    "targets_reason": (_str, False),
    "packages": (_list_of(_requirement, nonempty=True), True),
    "pins": (_list_of(_pin), False),
    # package -> why it comes from a URL, not the index (a URL skips the index, its trust and its pins)
    "direct_urls": (_str_table(_nonempty_str, _NAME_RE, "package name"), False),
    "pre": (_list_of(_requirement), False),
    "framework": (_framework, False),
    "companions": (_str_table(_name, _NAME_RE, "package name"), False),
    "cuda_packages": (_cuda_packages, False),
    "only_binary": (_list_of(_nonempty_str), False),
    "prefer_binary": (_bool, False),
    "glibc": (_version, False),
    "env": (_env_table, False),
    "tools": (_str_table(_str, _NAME_RE, "tool name"), False),
    "conda": (_conda, False),
    "extras": (_list_of(_name), False),
    "main": (_name, False),
    "aliases": (_list_of(_name), False),
    "step_timeout": (_timeout, False),
    "size_mb": (_size, False),
    "notes": (_str, False),
    "smoke": (_smoke, False),
    "as_of": (_date, False),
    "as_of_exempt": (_list_of(_name), False),
}

_TOP: dict[str, tuple[Checker, bool]] = {
    "name": (_name, True),
    "summary": (_nonempty_str, True),
    "homepage": (_nonempty_str, True),
    "status": (_one_of(STATUSES), True),
    "aliases": (_list_of(_name), False),
    "notes": (_str, False),
    "history": (_str, False),
    "smoke": (_smoke, False),  # what every variant checks, unless it says otherwise key by key
    "as_of": (_date, False),  # every variant's, unless it says otherwise
    "as_of_exempt": (_list_of(_name), False),
    "variants": (None, True),  # checked below, variant by variant
}


_conda.schema = _object_schema(_CONDA)
_smoke.schema = _object_schema(_SMOKE)


def json_schema() -> dict:
    """The JSON Schema of a recipe file, from the tables above (recipes/recipe.schema.json is its copy)."""
    top = _object_schema(_TOP)
    # A recipe-level [smoke] is merged key by key into each variant's, so a variant may omit it.
    top["properties"]["variants"] = {"type": "array", "minItems": 1, "items": _object_schema(_VARIANT)}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://github.com/nlpsetup/nlpsetup/blob/main/recipes/recipe.schema.json",
            "title": "nlpsetup recipe", "description": "One TOML file per tool: see `nlpsetup show TOOL`.", **top}


def _table(v, problems, key, schema: dict[str, tuple[Checker, bool]]) -> dict | None:
    if not isinstance(v, dict):
        problems.append((key, f"must be a table, got {_tname(v)}"))
        return None
    out = {}
    for k in v:
        if k not in schema:
            known = ", ".join(sorted(schema))
            problems.append((f"{key}.{k}" if key else k, f"unknown key {k!r} (known keys: {known})"))
    for k, (check, required) in schema.items():
        sub = f"{key}.{k}" if key else k
        if k not in v:
            if required:
                problems.append((sub, "is required"))
            continue
        if check is None:
            continue
        val = check(v[k], problems, sub)
        if val is not None:
            out[k] = val
    return out


def _tname(v) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list",
            dict: "a table"}.get(type(v), type(v).__name__)


def check_document(doc: dict, stem: str | None = None) -> tuple[dict, tuple[Variant, ...], list[tuple[str, str]]]:
    """A parsed recipe checked against the tables: (its top-level values, its variants, every problem as
    (key, message)). A recipe-level [smoke] is merged into each variant's key by key, and as_of and
    as_of_exempt are inherited; `stem`, where given, is the file name the recipe's name must match."""
    problems: list[tuple[str, str]] = []
    top = _table(doc, problems, "", _TOP) or {}
    variants: list[Variant] = []
    raw_variants = doc.get("variants")
    if "variants" in doc:
        if not isinstance(raw_variants, list) or not all(isinstance(x, dict) for x in raw_variants):
            problems.append(("variants", "must be an array of tables ([[variants]])"))
        elif not raw_variants:
            problems.append(("variants", "must hold at least one [[variants]] table"))
        else:
            shared = doc.get("smoke") if "smoke" in top else None  # only a valid recipe-level [smoke]
            for i, rv in enumerate(raw_variants):
                if isinstance(shared, dict) and isinstance(rv.get("smoke", {}), dict):
                    rv = {**rv, "smoke": {**shared, **rv.get("smoke", {})}}
                rv = {**{k: doc[k] for k in ("as_of", "as_of_exempt") if k in top}, **rv}  # inherited
                v = _variant(rv, problems, f"variants[{i}]", i, top.get("name"))
                if v is not None:
                    variants.append(v)
    name = top.get("name")
    if name is not None and stem is not None and name != stem:
        problems.append(("name", f"{name!r} must equal the file name's stem {stem!r}"))
    ids = [v.id for v in variants]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(("variants", f"variant id {dup!r} is used twice"))
    return top, tuple(variants), problems


def _variant(raw: dict, problems: list, key: str, index: int, recipe_name: str | None) -> Variant | None:
    before = len(problems)
    t = _table(raw, problems, key, _VARIANT)
    if t is None or len(problems) > before:
        return None
    packages = t["packages"]
    main = t.get("main") or _default_main(packages, recipe_name)
    if canonicalize_name(main) not in {canonicalize_name(Requirement(p).name) for p in packages}:
        problems.append((f"{key}.main", f"{main!r} is not one of the variant's packages"))
    _check_direct_urls(t, problems, key)
    framework = dict(t.get("framework", ()))
    for pkg, follows in t.get("companions", ()):
        if follows not in framework:
            problems.append((f"{key}.companions.{pkg}", f"follows {follows!r}, which is not in the variant's framework"))
    if t.get("as_of_exempt") and not t.get("as_of"):
        problems.append((f"{key}.as_of_exempt", "exempts packages from a cutoff, but there is no as_of"))
    if len(problems) > before:
        return None
    return Variant(
        id=t.get("id") or _default_id(packages, main, index),
        python=t["python"],
        python_reason=t.get("python_reason", ""),
        platforms=t.get("platforms", PLATFORMS),
        arch=t.get("arch", ARCHES),
        targets=t.get("targets", ()),
        targets_reason=t.get("targets_reason", ""),
        packages=packages,
        pins=t.get("pins", ()),
        pre=t.get("pre", ()),
        framework=t.get("framework", ()),
        companions=t.get("companions", ()),
        cuda_packages=t.get("cuda_packages", ()),
        only_binary=t.get("only_binary", ()),
        prefer_binary=t.get("prefer_binary", True),
        glibc=t.get("glibc"),
        env=t.get("env", ()),
        tools=t.get("tools", ()),
        conda=t.get("conda"),
        extras=t.get("extras", ()),
        main=main,
        aliases=t.get("aliases", ()),
        step_timeout=t.get("step_timeout"),
        size_mb=t.get("size_mb"),
        notes=t.get("notes", ""),
        smoke=t.get("smoke", Smoke()),
        as_of=t.get("as_of"),
        as_of_exempt=tuple(canonicalize_name(n) for n in t.get("as_of_exempt", ())),
    )


def _check_direct_urls(t: dict, problems: list, key: str) -> None:
    """A requirement that names a URL (`pkg @ https://...`, a path) bypasses the index and every
    check the user configured for it: allowed only where the recipe says why."""
    why = {canonicalize_name(k) for k, _ in t.get("direct_urls", ())}
    reqs = [(f"{key}.packages[{i}]", r, False) for i, r in enumerate(t["packages"])]
    reqs += [(f"{key}.pins[{i}]", p.req, bool(p.why.strip())) for i, p in enumerate(t.get("pins", ()))]
    reqs += [(f"{key}.pre[{i}]", r, False) for i, r in enumerate(t.get("pre", ()))]
    reqs += [(f"{key}.cuda_packages.{pkg}.{tag}", r, False) for pkg, tags in t.get("cuda_packages", ())
             for tag, r in tags]
    for where, raw, explained in reqs:
        req = Requirement(raw)
        if req.url and not explained and canonicalize_name(req.name) not in why:
            problems.append((where, f"{raw!r} is a direct URL; say why the index will not do in "
                                    f"direct_urls = {{ {req.name} = \"...\" }} (or a pin's why)"))


def _default_main(packages: tuple[str, ...], recipe_name: str | None) -> str:
    names = [Requirement(p).name for p in packages]
    if recipe_name and canonicalize_name(recipe_name) in {canonicalize_name(n) for n in names}:
        return recipe_name
    return names[0]


def _default_id(packages: tuple[str, ...], main: str, index: int) -> str:
    """A variant without an id is named by its main package's exact version, else by position."""
    for p in packages:
        req = Requirement(p)
        if canonicalize_name(req.name) == canonicalize_name(main):
            specs = list(req.specifier)
            if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
                return specs[0].version
    return f"v{index + 1}"
