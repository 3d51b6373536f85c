"""Names and ids are validated with `fullmatch`: `^...$` with `match` lets a trailing newline in.

`re.match(r"^[a-z]+$", "abc\\n")` matches, because `$` also matches just before a final
newline. A model id, a folder name or a TOML key with a newline at its end would then
pass validation. The rule checked here over every module in `bridge/`: a pattern
anchored at both ends is never used with `match` or `search`.
"""

from __future__ import annotations

import ast

import pytest

from tests.support.server import ROOT


def _anchored(pattern: object) -> bool:
    return isinstance(pattern, str | bytes) and pattern[:1] in ("^", b"^") \
        and pattern[-1:] in ("$", b"$") and pattern[-2:-1] not in ("\\", b"\\")


def anchored_patterns(source: str) -> set[str]:
    """Names bound to `re.compile("^...$")` in a module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if (isinstance(call.func, ast.Attribute) and call.func.attr == "compile"
                    and call.args and isinstance(call.args[0], ast.Constant)
                    and _anchored(call.args[0].value)):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def anchored_regex_misuse(source: str, anchored: set[str] | None = None) -> list[str]:
    """`NAME.match(...)`/`.search(...)` (or `module.NAME.match`) on an anchored pattern,
    and `re.match("^...$", ...)`: each as 'line: text'. `anchored`: names from every
    module, since patterns are imported (default: this module's own)."""
    anchored = anchored_patterns(source) if anchored is None else anchored
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("match", "search")):
            continue
        owner = node.func.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
        literal = (name == "re" and node.args and isinstance(node.args[0], ast.Constant)
                   and _anchored(node.args[0].value))
        if name in anchored or literal:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


MODULES = sorted((ROOT / "bridge").rglob("*.py"))


def test_the_check_finds_the_mistake_it_is_for():
    bad = 'import re\nID = re.compile(r"^[a-z]+$")\nok = ID.match(x)\nre.search(r"^a$", y)\n'
    assert len(anchored_regex_misuse(bad)) == 2
    elsewhere = 'from m import ID\nimport m\nID.match(x)\nm.ID.search(y)\n'
    assert len(anchored_regex_misuse(elsewhere, anchored_patterns(bad))) == 2
    good = 'import re\nID = re.compile(r"[a-z]+")\nok = ID.fullmatch(x)\n'
    assert anchored_regex_misuse(good) == []


def test_no_validation_lets_a_trailing_newline_through():
    sources = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in MODULES}
    anchored = set().union(*map(anchored_patterns, sources.values()))
    misused = {name: found for name, text in sources.items()
               if (found := anchored_regex_misuse(text, anchored))}
    assert misused == {}


def test_model_ids_and_hub_repos_with_a_trailing_newline_are_refused():
    from bridge.models.registry import ModelEntry

    good = ModelEntry.custom_entry("my-model", "upscale", "ESRGAN", 4, "my-model.pth").to_json()
    ModelEntry.from_json({**good, "hub_repo": "org/name"}, custom=True)
    with pytest.raises(ValueError, match="invalid model id"):
        ModelEntry.from_json({**good, "id": "my-model\n"}, custom=True)
    with pytest.raises(ValueError, match="hub_repo"):
        ModelEntry.from_json({**good, "hub_repo": "org/name\n"}, custom=True)
