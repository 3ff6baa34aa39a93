"""The README and docs/ stay navigable: every relative link resolves, results/README.md names every results folder,
and the README stays a user README (no torch import: this runs in well under a second)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
RESULTS_INDEX = RESULTS / "README.md"
README_MAX_LINES = 260

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
COMMENT = re.compile(r"<!--.*?-->", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target) and ![alt](target)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def doc_pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), RESULTS_INDEX]


def prose(text: str) -> str:
    """The text without code blocks, inline code and HTML comments (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", COMMENT.sub("", text)))


def links(text: str) -> list[str]:
    return LINK.findall(prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, title in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(title)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"(https?:|mailto:)", target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if path_part and not resolved.exists():
            problems.append(f"{target}: no such file or folder")
        elif path_part and not resolved.is_relative_to(root):
            problems.append(f"{target}: outside the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page):
    assert page.exists()
    assert broken_links(page) == []


def test_the_link_check_catches_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](page.md#title) [bad](nowhere.md) [anchor](page.md#no-such) [web](https://x.org)\n"
                    "`[code](not/checked)`\n\n```\n[fenced](not/checked)\n```\n", encoding="utf-8")
    problems = [p.split(":")[0] for p in broken_links(page, root=tmp_path)]
    assert problems == ["nowhere.md", "page.md#no-such"]


def results_entries(top: Path = RESULTS) -> list[str]:
    """Everything directly under results/ and each subfolder of a results folder; results/history/ is read the same
    way (its runs, and their folders)."""
    entries = []
    for path in sorted(top.iterdir()):
        if path == RESULTS_INDEX or path.name.startswith("."):
            continue
        name = path.relative_to(RESULTS).as_posix()
        entries.append(name)
        if path == RESULTS / "history":
            entries += results_entries(path)
        elif path.is_dir():
            entries += [f"{name}/{sub.name}" for sub in sorted(path.iterdir()) if sub.is_dir()]
    return entries


def test_results_index_names_every_entry():
    targets = {t.partition("#")[0].removeprefix("./").rstrip("/") for t in links(RESULTS_INDEX.read_text("utf-8"))}
    missing = [entry for entry in results_entries()
               if not any(t == entry or t.startswith(entry + "/") for t in targets)]
    assert missing == [], f"results/README.md links none of these: {missing}"


def test_readme_is_short():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"
