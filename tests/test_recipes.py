"""The recipe schema: every shipped recipe is valid, and every kind of mistake is reported with
the file, the key and (where it can be found) the line, all problems of a file at once."""

from __future__ import annotations

import pytest

from nlpsetup.base import paths
from nlpsetup.base.errors import RecipeError
from nlpsetup.recipes import load as recipes

BUILTIN = paths.builtin_recipes_dir()
GOOD = """\
name = "demo"
summary = "A demo tool"
homepage = "https://example.org"
status = "active"

[[variants]]
python = ">=3.9"
packages = ["demo==1.0"]
[variants.smoke]
imports = ["demo"]
timeout = 30
"""


def parse(text: str, stem: str = "demo"):
    return recipes.parse(text, f"{stem}.toml", stem=stem)


def problems_of(text: str, stem: str = "demo") -> list[str]:
    with pytest.raises(RecipeError) as info:
        parse(text, stem)
    return info.value.problems


@pytest.mark.parametrize("path", sorted(BUILTIN.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_is_valid_and_has_a_smoke_check(path):
    r = recipes.load_file(path)
    assert r.name == path.stem and r.variants
    for v in r.variants:
        assert v.smoke.imports or v.smoke.code or v.smoke.commands, f"{r.name} {v.id} has no smoke check"


def test_a_minimal_recipe_gets_defaults():
    r = parse(GOOD)
    v = r.variants[0]
    assert v.id == "1.0" and v.platforms == ("linux", "macos", "windows") and v.prefer_binary
    assert v.smoke.timeout == 30 and v.main == "demo"


def with_variant_line(line: str) -> str:
    return GOOD.replace('packages = ["demo==1.0"]\n', f'packages = ["demo==1.0"]\n{line}\n')


CASES = [
    ("not toml", 'name = "demo\n', "not valid TOML"),
    ("missing key", GOOD.replace('summary = "A demo tool"\n', ""), "summary: is required"),
    ("wrong type", GOOD.replace('status = "active"', "status = 3"), "status: must be a string"),
    ("bad status", GOOD.replace('"active"', '"dead"'), "'dead' is not one of active, unmaintained, archived"),
    ("unknown top key", GOOD + 'colour = "blue"\n', "unknown key 'colour'"),
    ("unknown variant key", with_variant_line('pythn = "3"'), "variants[0].pythn: unknown key"),
    ("bad specifier", GOOD.replace('">=3.9"', '"3.9+"'), "not a valid version specifier"),
    ("bad requirement", GOOD.replace('"demo==1.0"', '"demo[=1"'), "not a valid requirement"),
    ("bad marker", GOOD.replace('"demo==1.0"', "\"demo; python_version >> '3'\""), "not a valid requirement"),
    ("pip option", GOOD.replace('"demo==1.0"', '"--index-url=https://evil/simple"'), "cannot be a pip option"),
    ("editable", GOOD.replace('"demo==1.0"', '"-e ."'), "cannot be a pip option"),
    ("pin option", with_variant_line('pins = ["-r other.txt"]'), "cannot be a pip option"),
    ("empty packages", GOOD.replace('["demo==1.0"]', "[]"), "packages: must not be empty"),
    ("no variants", GOOD.split("[[variants]]")[0] + "variants = []\n", "at least one [[variants]]"),
    ("negative timeout", GOOD.replace("timeout = 30", "timeout = -1"), "between 1 and"),
    ("absurd timeout", GOOD.replace("timeout = 30", "timeout = 99999999"), "between 1 and"),
    ("bad platform", with_variant_line('platforms = ["beos"]'), "'beos' is not one of linux, macos, windows"),
    ("bad arch", with_variant_line('arch = ["sparc"]'), "'sparc' is not one of x86_64, arm64"),
    ("bad cuda tag", with_variant_line('cuda_packages = { demo = { gpu = "demo-gpu" } }'), "CUDA build tag"),
    ("companion without framework", with_variant_line('companions = { "x" = "tensorflow" }'), "not in the variant's framework"),
    ("bad env name", with_variant_line('env = { "A B" = "1" }'), "not a valid variable name"),
    ("name with path", GOOD.replace('name = "demo"', 'name = "../demo"'), "not a valid name"),
]


@pytest.mark.parametrize(("label", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_schema_errors_name_the_key_and_the_cause(label, text, expected):
    found = problems_of(text)
    assert any(expected in p for p in found), found


def test_name_must_equal_the_file_stem():
    assert any("must equal the file name's stem 'other'" in p for p in problems_of(GOOD, stem="other"))


def test_all_problems_of_a_file_are_reported_at_once_with_lines():
    text = GOOD.replace('status = "active"', 'status = "dead"').replace('">=3.9"', '"nope"')
    found = problems_of(text)
    assert len(found) == 2
    assert found[0].startswith("line 4: status") and found[1].startswith("line 7: variants[0].python")


def test_toml_syntax_error_gives_its_line():
    found = problems_of(GOOD.replace('homepage = "https://example.org"', "homepage = = 1"))
    assert "line 3" in found[0], found


def test_deeply_nested_arrays_are_an_error_not_a_crash():
    found = problems_of(GOOD.replace('status = "active"', "status = " + "[" * 5000 + "]" * 5000))
    assert found


def test_huge_and_non_utf8_files_are_refused(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text(GOOD.replace("demo", "big") + "#" * 2_000_000)
    with pytest.raises(RecipeError, match="bytes"):
        recipes.load_file(big)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(GOOD.replace("demo", "latin").encode() + "# caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="not UTF-8"):
        recipes.load_file(latin)


def test_user_folder_overrides_builtin_and_broken_files_are_reported_not_fatal(tmp_path):
    (tmp_path / "spacy.toml").write_text(GOOD.replace('"demo"', '"spacy"').replace("demo==1.0", "spacy==3.0.0"))
    (tmp_path / "broken.toml").write_text("name = ")
    book = recipes.load_book([tmp_path, BUILTIN])
    assert book.find("spacy").path == str(tmp_path / "spacy.toml")
    assert book.find("adaptnlp") is not None
    assert [e.path for e in book.broken] == [str(tmp_path / "broken.toml")]


def test_install_names_a_user_recipe_that_overrides_a_built_in_one(tmp_path, run_cli):
    (tmp_path / "spacy.toml").write_text(GOOD.replace('"demo"', '"spacy"').replace("demo==1.0", "spacy==3.0.0"))
    code, _, err = run_cli("install", "spacy", "--dry-run", env={"NLPSETUP_RECIPES_PATH": str(tmp_path)})
    notes = [ln for ln in err.splitlines() if ln.startswith("nlpsetup: note:")]
    assert code == 0 and notes == [f"nlpsetup: note: spacy is built from {tmp_path / 'spacy.toml'} "
                                   f"(NLPSETUP_RECIPES_PATH), not from {BUILTIN / 'spacy.toml'}"]
    code, _, err = run_cli("install", "adaptnlp", "--dry-run", "--python", "3.8",
                           env={"NLPSETUP_RECIPES_PATH": str(tmp_path)})
    assert "note:" not in err  # a built-in recipe nobody overrides goes without a word


def test_aliases_and_did_you_mean():
    book = recipes.load_book([BUILTIN])
    assert book.find("tf-text").name == "tensorflow-text"
    assert book.find("TF_Text").name == "tensorflow-text"
    assert "spacy" in book.suggest("spaci")


def test_recipe_check_command_exit_codes(tmp_path, run_cli):
    good = tmp_path / "demo.toml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('name = "demo"', 'name = "bad"').replace("timeout = 30", "timeout = 0") + "x = 1\n")
    code, out, err = run_cli("recipe", "check", str(good))
    assert code == 0 and "ok" in out
    code, out, err = run_cli("recipe", "check", str(good), str(bad))
    assert code == 2
    assert f"{bad}: line" in err and "timeout" in err and "unknown key 'x'" in err
    assert "Traceback" not in err


def test_pins_keep_their_reasons():
    r = recipes.load_file(BUILTIN / "adaptnlp.toml")
    pins = {p.name: p for p in r.variants[0].pins}
    assert "ModelInfo" in pins["huggingface-hub"].why and pins["huggingface-hub"].url.startswith("https://")


@pytest.mark.parametrize("var", ["PIP_TARGET", "PIP_INDEX_URL", "UV_INDEX", "PYTHONPATH", "VIRTUAL_ENV", "PATH",
                                 "LD_PRELOAD", "DYLD_INSERT_LIBRARIES", "CONDA_PREFIX", "HOME", "XDG_CONFIG_HOME",
                                 "https_proxy", "SSL_CERT_FILE", "GIT_SSH_COMMAND", "NLPSETUP_HOME",
                                 "OPENSSL_CONF", "OPENSSL_MODULES", "OPENSSL_ENGINES", "SSL_CERT_DIR", "GCONV_PATH",
                                 "SSLKEYLOGFILE", "HOSTALIASES"])
def test_a_recipe_cannot_redirect_the_installer_the_interpreter_or_the_loader(var):
    variant = GOOD.replace("[variants.smoke]", f'env = {{ {var} = "/tmp/x" }}\n[variants.smoke]')
    smoke = GOOD + f'env = {{ FOO = "1", {var} = "/tmp/x" }}\n'
    for text in (variant, smoke):
        [problem] = problems_of(text)
        assert var in problem and "may not set it" in problem and problem.startswith("line ")


def test_a_direct_url_needs_a_why():
    url = "demo @ https://example.org/demo-1.0-py3-none-any.whl"
    text = GOOD.replace('packages = ["demo==1.0"]', f'packages = ["{url}"]')
    [problem] = problems_of(text)
    assert problem.startswith("line 8: variants[0].packages[0]:") and "direct URL" in problem and "direct_urls" in problem
    ok = parse(text.replace("[variants.smoke]", 'direct_urls = { demo = "the fork with the fix is not on PyPI" }\n'
                                                 "[variants.smoke]"))
    assert ok.variants[0].packages == (url,)
    pin = GOOD.replace("[variants.smoke]", '[[variants.pins]]\nreq = "numpy @ file:///wheels/numpy.whl"\n'
                                            "[variants.smoke]")
    assert "variants[0].pins[0]" in problems_of(pin)[0]
    assert parse(pin.replace('numpy.whl"\n', 'numpy.whl"\nwhy = "our patched build"\n')).variants[0].pins
    for bare in ("https://example.org/demo.whl", "./demo", "/wheels/demo.whl"):
        assert "not a valid requirement" in problems_of(GOOD.replace('"demo==1.0"', f'"demo==1.0", "{bare}"'))[0]
