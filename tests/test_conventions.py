"""docs/conventions.md: every ```python block runs, each in a fresh namespace, and asserts its row."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "conventions.md"


def _sections() -> list[tuple[str, str]]:
    """(heading, code) for every python block, the heading being the last '## ' line above it."""
    text = PAGE.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        headings = re.findall(r"^## ([^:\n]+)", text[:m.start()], flags=re.M)
        out.append((headings[-1].strip() if headings else "top", m.group(1)))
    return out


SECTIONS = _sections()


def test_every_row_of_the_table_has_a_tested_section():
    text = PAGE.read_text(encoding="utf-8")
    anchors = re.findall(r"\]\(#([a-z0-9]+)\)", text)
    assert len(anchors) >= 12
    for anchor in anchors:
        body = text.split(f'<a id="{anchor}"></a>', 1)
        assert len(body) == 2, f"table row #{anchor} has no section"
        section = body[1].split("<a id=", 1)[0]
        assert "```python" in section and "assert" in section, f"section #{anchor} has no checked snippet"


@pytest.mark.parametrize("code", [c for _, c in SECTIONS], ids=[h for h, _ in SECTIONS])
def test_snippet_runs_and_asserts(code):
    assert "assert" in code
    exec(compile(code, str(PAGE), "exec"), {"__name__": "conventions_snippet"})


@pytest.mark.parametrize("where", ["README.md", "lessons/README.md", "app_pages/explorer.py"])
def test_the_page_is_linked(where):
    assert "docs/conventions.md" in (ROOT / where).read_text(encoding="utf-8")
