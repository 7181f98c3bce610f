"""A tool request like `autonlp==0.3.7` picks the variant whose range admits it: the overlap of
two specifiers must be exact, with PEP 440's special cases, whichever packaging is installed."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet

from nlpsetup.recipes import specsets

CASES = [
    (">1.0,<1.0.1", ">=1", True),  # 1.0.0.1 is in both
    (">=3.8,<3.9", "==0.0.1", False),
    (">=3.8,<3.9", "<3.8", False),
    (">=3.8,<3.9", ">=3.7", True),
    ("==0.3.7", ">=0.3", True),
    ("==0.3.7", "==0.3.6", False),
    ("<3.8", "<3.8", True),
    ("", "==1", True),
    (">=3.7,<3.8", "<3.7.5", True),
    ("<1.0", ">=1.0", False),
    ("==1.*", ">=2", False),
    ("~=1.4", "<1.4", False),
    (">1.0", "<=1.0.post1", False),  # >1.0 admits no post-release of 1.0
    (">2.0a1", "<2.0", False),  # <2.0 admits no pre-release of 2.0
    ("!=1.0", "==1.0", False),
    ("==1.0", "==1.0+cpu", True),  # == admits local versions
    (">1.0", "==1.0+cpu", False),
    ("!=1.*", "==1.5", False),
    ("~=2.2", ">=2.9,<3", True),
    ("<3.10", ">3.9.99", True),
    ("", "==1,<1.0.post1", True),  # 1.0: <V.postN excludes only V.postN's own pre-releases
    ("<1.0.post1", "==1.0.post0", True),
    ("<1.0.post1", "==1.0.post1.dev0", False),
    (">1.0a1", "==1.0", True),  # >V excludes V's post-releases, not the final release after a pre-release
    (">1.0.dev0", "==1.0.dev1", True),
    (">1.0.post1", "==1.0.post1+cpu", False),  # nor V's local versions
    ("<=1.0", "==1.0+1", True),  # a numeric local label sorts above an alphabetic one
]


@pytest.mark.parametrize(("a", "b", "expected"), CASES)
def test_interval_arithmetic_is_exact(a, b, expected):
    assert specsets.overlap_by_intervals(SpecifierSet(a), SpecifierSet(b)) is expected
    assert specsets.overlap_by_intervals(SpecifierSet(b), SpecifierSet(a)) is expected


@pytest.mark.parametrize(("a", "b", "expected"), CASES)
def test_overlap_uses_packaging_where_it_can(a, b, expected):
    assert specsets.overlap(SpecifierSet(a), SpecifierSet(b)) is expected


_versions = st.sampled_from(["0", "1", "1.0", "1.0.1", "1.0.post1", "1.0.post0", "1.0.post1.dev0", "1.0.dev1", "1.0a1",
                             "1.0a1.post1", "1.1a1", "1.4", "1.4.5", "2.0", "2.0rc1", "2.0.dev0", "3.8", "3.9.99", "3.10"])
_clause = st.builds(lambda op, v: f"{op}{v}", st.sampled_from(["==", "!=", ">=", "<=", ">", "<"]), _versions) | \
    st.builds(lambda op, v: f"{op}{v}", st.sampled_from(["==", "!="]), st.sampled_from(["1.0+cpu", "1.0+1", "1.0.post1+x"])) | \
    st.builds(lambda op, v: f"{op}{v}.*", st.sampled_from(["==", "!="]), st.sampled_from(["1", "1.0", "2", "3.9"])) | \
    st.builds(lambda v: f"~={v}", st.sampled_from(["1.0", "1.4.5", "2.2", "3.8"]))
_spec = st.lists(_clause, max_size=3).map(",".join)


@pytest.mark.skipif(not hasattr(SpecifierSet, "is_disjoint"), reason="this packaging has no is_disjoint to compare with")
@settings(max_examples=400, deadline=None)
@given(_spec, _spec)
@example("", "==1,<1.0.post1")  # found by a fresh seed: 1.0 satisfies both
def test_interval_arithmetic_agrees_with_packaging(a, b):
    assert specsets.overlap_by_intervals(SpecifierSet(a), SpecifierSet(b)) is (not SpecifierSet(a).is_disjoint(SpecifierSet(b)))
