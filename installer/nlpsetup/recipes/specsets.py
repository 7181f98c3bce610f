"""Whether two version specifiers admit a common version, exactly.

packaging answers this itself from 26.3 on (`SpecifierSet.is_disjoint`); older packaging gets
the same answer from interval arithmetic here: each clause becomes a union of intervals over
PEP 440's version order, with its special cases (`>1.0` admits no 1.0.postN, `<2.0` no 2.0
pre-release, `==1.4.*` is [1.4.dev0, 1.5.dev0)), and two sets overlap when their intersection
holds an interval that is not empty.
"""

from __future__ import annotations

import re

from packaging.specifiers import Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

# An interval is (low, low_closed, high, high_closed); None is unbounded.
Bound = Version | None
Interval = tuple[Bound, bool, Bound, bool]
# Every version there is: nothing sorts below 0.dev0 (versions cannot be negative).
_ALL: list[Interval] = [(Version("0.dev0"), True, None, False)]
_HUGE = 10**18  # "after every post-release": V.post<huge> is above any V.postN that exists


def overlap(a: SpecifierSet, b: SpecifierSet) -> bool:
    if hasattr(a, "is_disjoint"):  # packaging >= 26.3
        return not a.is_disjoint(b)
    return overlap_by_intervals(a, b)


def overlap_by_intervals(a: SpecifierSet, b: SpecifierSet) -> bool:
    region = _ALL
    for clause in (*a, *b):
        region = _intersect(region, _intervals(clause))
        if not region:
            return False
    return True


def _intervals(s: Specifier) -> list[Interval]:
    op, text = s.operator, s.version
    if op == "===":
        try:
            v = Version(text)
        except InvalidVersion:
            return []  # arbitrary equality with a non-version string: nothing comparable
        return [(v, True, v, True)]
    if text.endswith(".*"):
        lo, hi = _prefix_range(text[:-2])
        inside = [(lo, True, hi, False)]
        return inside if op == "==" else _complement(inside)
    v = Version(text)
    if op == "==":
        return [(v, True, _after_locals(v), True)] if not v.local else [(v, True, v, True)]
    if op == "!=":
        return _complement([(v, True, _after_locals(v) if not v.local else v, True)])
    if op == ">=":
        return [(v, True, None, False)]
    if op == "<=":
        return [(None, False, _after_locals(v), True)]
    if op == ">":
        return [_above(v)]
    if op == "<":  # excludes V's pre-releases unless V is one: 1.0.post1.dev0 for <1.0.post1, 1.0 stays in
        return [(None, False, v if v.is_prerelease else Version(f"{v.public}.dev0"), False)]
    if op == "~=":  # ~=1.4.5 is >=1.4.5, ==1.4.*
        release = v.release[:-1]
        lo, hi = _prefix_range(".".join(map(str, release)))
        return [(v, True, hi, False)]
    raise ValueError(f"unknown operator {op!r}")


def _above(v: Version) -> Interval:
    """>V: the next version after V.devN is V.dev(N+1); after V.postN, V.post(N+1).dev0; otherwise
    V's post-releases and local versions are excluded too (>1.0 admits no 1.0.post1, >1.0a1 does
    admit 1.0)."""
    if v.dev is not None:
        return (Version(re.sub(r"dev\d+$", f"dev{v.dev + 1}", v.public)), True, None, False)
    if v.post is not None:
        return (Version(re.sub(r"post\d+$", f"post{v.post + 1}.dev0", v.public)), True, None, False)
    return (Version(f"{v.public}.post{_HUGE}"), False, None, False)


def _prefix_range(prefix: str) -> tuple[Version, Version]:
    """==1.4.* spans [1.4.dev0, 1.5.dev0)."""
    p = Version(prefix)
    release = list(p.release)
    upper = release[:-1] + [release[-1] + 1]
    epoch = f"{p.epoch}!" if p.epoch else ""
    return Version(f"{epoch}{'.'.join(map(str, release))}.dev0"), Version(f"{epoch}{'.'.join(map(str, upper))}.dev0")


def _after_locals(v: Version) -> Version:
    """== and <= admit V's local versions (1.0+cpu); they sort just above V, below V.post0.dev0."""
    return Version(f"{v}+{_HUGE}")  # a number: numeric local labels sort above alphabetic ones


def _complement(region: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    low: Bound = None
    low_closed = False
    for lo, lo_c, hi, hi_c in sorted(region, key=lambda i: (i[0] is not None, i[0] or Version("0"))):
        out.append((low, low_closed, lo, not lo_c))
        low, low_closed = hi, not hi_c
    out.append((low, low_closed, None, False))
    return [i for i in out if _nonempty(i)]


def _intersect(x: list[Interval], y: list[Interval]) -> list[Interval]:
    out = []
    for a in x:
        for b in y:
            lo, lo_c = _max_low((a[0], a[1]), (b[0], b[1]))
            hi, hi_c = _min_high((a[2], a[3]), (b[2], b[3]))
            i = (lo, lo_c, hi, hi_c)
            if _nonempty(i):
                out.append(i)
    return out


def _max_low(a, b):
    if a[0] is None:
        return b
    if b[0] is None or a[0] > b[0]:
        return a
    if b[0] > a[0]:
        return b
    return a[0], a[1] and b[1]


def _min_high(a, b):
    if a[0] is None:
        return b
    if b[0] is None or a[0] < b[0]:
        return a
    if b[0] < a[0]:
        return b
    return a[0], a[1] and b[1]


def _nonempty(i: Interval) -> bool:
    lo, lo_c, hi, hi_c = i
    if lo is None or hi is None:
        return True
    # Between two distinct versions there is always another (a longer release, a .dev or .post).
    return lo < hi or (lo == hi and lo_c and hi_c)
