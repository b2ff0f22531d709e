"""The repository's documentation is self-contained: no file points at design notes that are not
in the repository, and the links of README.md and docs/*.md resolve (files and #anchors)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# References to a spec folder's .md files, a shared folder, or the design file. The patterns (and
# the samples below) are written so that this file does not match itself.
FORBIDDEN = re.compile(r"spec/[\w.-]+\.md|shared[/]|DESIGN[.]md")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target)


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc})")
    return [p for p in out.decode("utf-8").split("\0") if p]


def _text(path: Path) -> str | None:
    """The file's text, or None for a binary (or non-UTF-8) file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_file_points_at_notes_outside_the_repository():
    found = []
    for rel in _tracked_files():
        path = ROOT / rel
        if not path.is_file():
            continue
        text = _text(path)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            m = FORBIDDEN.search(line)
            if m:
                found.append(f"{rel}:{lineno}: {m.group(0)}")
    assert not found, "references to notes that are not in the repository:\n" + "\n".join(found)


def test_the_check_catches_each_kind_of_reference():
    for bad in ("see spec" + "/metrics.md section 2", "the shared" + "/ folder",
                "as DESIGN" + ".md says"):
        assert FORBIDDEN.search(bad), bad
    for fine in ("the model spec's neutral_keys", "docs/metrics.md", "a shared runs folder"):
        assert not FORBIDDEN.search(fine), fine


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text, fenced, anchors = path.read_text(encoding="utf-8"), False, set()
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            anchors.add(_slug(line.lstrip("#")))
    return anchors


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...: not checked (no network)
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{page.name}: {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{page.name}: {target}: no heading '#{anchor}'")
    return broken


def test_readme_links_every_docs_page_and_each_link_resolves():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    mentioned = set(re.findall(r"docs/[\w.-]+\.md", readme))
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages, "docs/ has no pages"
    assert not sorted(mentioned - pages), f"README.md names missing pages: {sorted(mentioned - pages)}"
    assert not sorted(pages - mentioned), f"README.md does not link: {sorted(pages - mentioned)}"


@pytest.mark.parametrize("page", ["README.md", *sorted(f"docs/{p.name}" for p in
                                                     (ROOT / "docs").glob("*.md"))])
def test_relative_links_resolve(page):
    broken = _broken_links(ROOT / page)
    assert not broken, "\n".join(broken)


def test_the_link_check_catches_a_broken_link(tmp_path):
    (tmp_path / "a.md").write_text("# Real heading\n\n[ok](a.md#real-heading) [gone](b.md) "
                                   "[bad](a.md#no-such) [web](https://example.org)\n",
                                   encoding="utf-8")
    broken = _broken_links(tmp_path / "a.md")
    assert [b.split(": ")[1] for b in broken] == ["b.md", "a.md#no-such"]
