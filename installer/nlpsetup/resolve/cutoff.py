"""Dependencies as of a date: the cutoff a plan resolves under, as one value.

A recipe's `as_of = "2021-12-31"` (or `--as-of DATE`) means every distribution is resolved from
files the index says were uploaded by the end of that day, UTC (PEP 700 `upload-time`). pip (26.0+)
applies it with `--uploaded-prior-to`, uv with `--exclude-newer`; both take the first instant that
is excluded, the next day at 00:00Z. `Cutoff.source` says who chose the date (recipe, --as-of, the
env's record, a search), so that a later step can tell a user's choice from a recipe's.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.resolve.cpython import KNOWN_MINORS, python_fits

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LATEST = "latest"
PIP_MIN = (26, 0)  # the first pip with --uploaded-prior-to
PIP_FLAG = "--uploaded-prior-to"
UV_FLAG = "--exclude-newer"
FAR = "2999-01-01T00:00:00Z"  # uv's --exclude-newer-package NAME=FAR lifts the cutoff for NAME
# Where the env's pip cannot apply a cutoff, the build tools of sdists are resolved as of the date too:
# BUILD_TOOLS (what an sdist without pyproject.toml builds with) listed in BUILD_IN, resolved into
# BUILD_CONSTRAINTS (both in the env's folder), which bound the isolated builds.
BUILD_TOOLS = ("setuptools", "wheel")
BUILD_IN, BUILD_CONSTRAINTS = "nlpsetup-build.in", "nlpsetup-build-constraints.txt"
PINNED = "nlpsetup-pinned.txt"  # what uv resolved as of the date, which the env's pip installs exactly
# uv builds a legacy sdist (a setup.py, no pyproject.toml) with setuptools>=40.8.0 (February 2019),
# which no cutoff before then has: under an older cutoff the build tools stay as new as that floor.
BUILD_FLOOR = "2019-03-01T00:00:00Z"


def build_floor(instant: str) -> list[str]:
    """uv arguments that keep setuptools and wheel at the floor under a cutoff older than it
    (`instant`: an ISO 8601 UTC instant, as the cutoff flags take)."""
    if instant >= BUILD_FLOOR:
        return []
    return [a for n in BUILD_TOOLS for a in ("--exclude-newer-package", f"{n}={BUILD_FLOOR}")]
_DATA = Path(__file__).parents[1] / "data" / "cpython.toml"


@dataclass(frozen=True)
class Cutoff:
    date: dt.date
    source: str  # recipe | --as-of | env | lock | search
    exempt: tuple[str, ...] = ()  # packages resolved without the cutoff (the recipe's as_of_exempt)

    @property
    def instant(self) -> str:
        """The first excluded instant: the end of `date` in UTC."""
        return f"{self.date + dt.timedelta(days=1)}T00:00:00Z"

    def describe(self) -> str:
        return f"dependencies as of {self.date} ({self.source})"

    def to_dict(self) -> dict:
        return {"date": str(self.date), "source": self.source, "before": self.instant, "exempt": list(self.exempt)}


def parse_date(text: str, what: str = "--as-of") -> dt.date:
    """YYYY-MM-DD, or a one-line usage error."""
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else dt.date.fromisoformat("bad")
    except (ValueError, TypeError):
        raise NlpsetupError(f"{what} {text!r} is not a date", hint="write YYYY-MM-DD (e.g. 2021-12-31), or latest") from None


def choose(recipe_date: str | None, override: str | None, exempt: tuple[str, ...] = (),
           today: dt.date | None = None) -> Cutoff | None:
    """The cutoff a plan gets: --as-of (a date, or `latest` for none) over the recipe's own."""
    if override == LATEST:
        return None
    if override:
        date = parse_date(override)
        if today is not None and date > today:
            raise NlpsetupError(f"--as-of {override} is in the future", hint="use a past date, today's, or latest")
        return Cutoff(date, "--as-of", exempt)
    return Cutoff(dt.date.fromisoformat(recipe_date), "recipe", exempt) if recipe_date else None


def from_dict(data) -> Cutoff | None:
    """A cutoff recorded in a manifest or lock (None when there is none)."""
    if not isinstance(data, dict) or not isinstance(data.get("date"), str):
        return None
    return Cutoff(parse_date(data["date"], "the recorded as_of"), str(data.get("source") or "env"),
                  tuple(str(x) for x in data.get("exempt") or ()))


@functools.cache
def cpython_released() -> dict[str, dt.date]:
    """Minor -> the date of its X.Y.0 release (data/cpython.toml, with its sources)."""
    with open(_DATA, "rb") as f:
        return {k: dt.date.fromisoformat(v) for k, v in tomllib.load(f)["released"].items()}


def newer_pythons(minors, date: dt.date) -> list[str]:
    """The minors among `minors` released after `date`: a cutoff leaves them no wheels of their own."""
    released = cpython_released()
    return [m for m in minors if m in released and released[m] > date]


def pip_supports(version: str | None) -> bool:
    """Whether a pip version has --uploaded-prior-to."""
    try:
        return tuple(int(p) for p in (version or "0").split(".")[:2]) >= PIP_MIN
    except ValueError:
        return False


def recipe_warnings(recipe) -> list[str]:
    """`recipe check`: a variant of an unmaintained or archived tool without as_of (it resolves
    against whatever the index holds on the day, and rots as its dependencies move on), and a
    variant whose Python range admits a CPython released after its as_of (no wheel for that Python
    can be in the cutoff: only sdists, compiled at install)."""
    out = []
    for v in recipe.variants:
        if recipe.status in ("unmaintained", "archived") and not v.as_of:
            out.append(f"variant {v.id}: the tool is {recipe.status} but the variant has no as_of: its dependencies "
                       "resolve to the newest releases on each install day and will break it (add as_of, the "
                       "newest date at which it still installs and passes its smoke checks)")
        if v.as_of and (late := newer_pythons([m for m in KNOWN_MINORS if python_fits(v.python, m)],
                                              dt.date.fromisoformat(v.as_of))):
            out.append(f"variant {v.id}: python admits {', '.join(late)}, released after its as_of {v.as_of}: "
                       "no wheel for them can be in the cutoff (narrow python, or move as_of forward)")
    return out


def sdist_only_note(date: dt.date, minor: str) -> str | None:
    """What a plan says when its Python was released after the cutoff."""
    late = newer_pythons([minor], date)
    if not late:
        return None
    return (f"Python {minor} was released on {cpython_released()[minor]}, after the cutoff {date}: no wheel for it "
            "can be in the cutoff, so every compiled dependency is built from its sdist here (needs a compiler "
            "and headers); pure-Python wheels still install")


def late_releases(files: dict, cut: Cutoff) -> list[str]:
    """The releases (name -> indexfiles.File list) none of whose files was uploaded before the cutoff,
    or whose index gives no upload time: 'name: why'. The PyTorch family and the exempt are not cut."""
    from nlpsetup.recipes.model import TORCH_FAMILY

    end = dt.datetime.fromisoformat(cut.instant.replace("Z", "+00:00"))
    out = []
    for name, fs in sorted(files.items()):
        if name in TORCH_FAMILY or name in cut.exempt or not fs:
            continue
        times = [dt.datetime.fromisoformat(f.upload_time.replace("Z", "+00:00")) for f in fs if f.upload_time]
        if not times:
            out.append(f"{name}: its index gives no upload time")
        elif min(times) >= end:
            out.append(f"{name}: uploaded {min(times).date()}, after {cut.date}")
    return out
