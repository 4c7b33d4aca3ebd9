"""The README and every page under ``docs/`` say what the code does: their Python blocks run, their DAGs
parse, and their relative links lead somewhere.

How a fenced block is treated is said by the words after its language, which Markdown renderers ignore
(GitHub highlights ```` ```python dag ```` as Python):

- ```` ```python ```` is executed, alone, in a fresh namespace, with a temporary working directory. It
  must be complete: its own imports, and names it defines. An ``assert`` in it is a real check.
- ```` ```python dag ```` is a DAG file: written to a temporary folder and parsed by Airflow's ``DagBag``,
  as the DAG processor would. It must define at least one DAG and give no import error (a misplaced
  operator argument, a cycle, a bad ``expand`` are all import errors).
- ```` ```python compile ```` is only compiled: for a block that needs something a unit test can't have
  (a running cluster). Use it sparingly; say in the text around it what it needs.

Any other word after ``python`` fails the test (a typo must not skip a block). Blocks of other languages
(``bash``, ``json``, ``sql``, ``text``...) are not run.

Links: every relative link ``[text](path)`` and ``[text](path#anchor)`` outside code must name a file or
folder of the repository, and an anchor must be a heading of the Markdown file it points at (GitHub's
slugs). A link to a page that is missing is reported with every other broken link, in one failure that
lists them all; no link is skipped.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
PYTHON = {"python", "py", "python3"}
MODES = {"": "run", "dag": "dag", "compile": "compile"}

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_HEADING = re.compile(r"^(#{1,6})\s+(?P<title>.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    mode: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def split_page(page: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    """The page's fenced blocks, and its other lines (numbered from 1) where links and headings live."""
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    fence: re.Match[str] | None = None
    body: list[str] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if fence is None:
            opening = _FENCE.match(line)
            if opening is None:
                prose.append((number, line))
                continue
            fence, start, body = opening, number, []
            continue
        closing = _FENCE.match(line)
        if (
            closing is not None
            and closing["fence"][0] == fence["fence"][0]
            and len(closing["fence"]) >= len(fence["fence"])
            and not closing["info"].strip()
        ):
            words = fence["info"].split()
            language = words[0].lower() if words else ""
            blocks.append(Block(page, start, language, " ".join(words[1:]), textwrap.dedent("\n".join(body))))
            fence = None
            continue
        body.append(line)
    assert fence is None, f"{page.relative_to(REPO)}: a code fence opened and never closed"
    return blocks, prose


def python_blocks() -> list[Block]:
    return [block for page in PAGES for block in split_page(page)[0] if block.language in PYTHON]


PYTHON_BLOCKS = python_blocks()


def test_the_pages_have_python_blocks_of_every_kind():
    """The collection itself can fail: a parser that finds nothing would pass every test below."""
    kinds = Counter(MODES.get(block.mode, block.mode) for block in PYTHON_BLOCKS)
    assert kinds["run"] >= 5 and kinds["dag"] >= 4, kinds
    assert (REPO / "README.md") in {block.page for block in PYTHON_BLOCKS}


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.name)
def test_python_block(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    mode = MODES.get(block.mode)
    assert mode is not None, (
        f"{block.name}: ```python {block.mode}: unknown mode; use one of "
        f"{', '.join(repr(m) for m in MODES)} (see this test's docstring)"
    )
    code = compile(block.code, block.name, "exec")
    if mode == "compile":
        return
    monkeypatch.chdir(tmp_path)
    if mode == "run":
        exec(code, {"__name__": "__docs_example__"})  # the documentation's own code, run as a reader would
        return
    parse_dag_file(block, tmp_path)


def parse_dag_file(block: Block, folder: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    stem = re.sub(r"\W", "_", block.name)
    path = folder / f"{stem}.py"
    path.write_text(block.code, encoding="utf-8")
    bag = DagBag(dag_folder=str(path), safe_mode=False, bundle_name="docs_examples")
    assert not bag.import_errors, f"{block.name}: the DAG does not parse:\n{_errors(bag.import_errors)}"
    assert bag.dags, f"{block.name}: a ```python dag block must define a DAG"


def _errors(errors: dict[str, str]) -> str:
    return "\n".join(f"{where}:\n{textwrap.indent(str(error), '    ')}" for where, error in errors.items())


# -- links ---------------------------------------------------------------------------------------------


def slug(title: str) -> str:
    """GitHub's anchor for a heading: the text of links and code kept, lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for _, line in split_page(page)[1]:
        heading = _HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading["title"])
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def relative_links(page: Path) -> list[tuple[int, str]]:
    links: list[tuple[int, str]] = []
    for number, line in split_page(page)[1]:
        for match in _LINK.finditer(_INLINE_CODE.sub("", line)):
            target = match["target"]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # https:, mailto: ...: not this repository's
            links.append((number, target))
    return links


def broken_link(page: Path, target: str) -> str | None:
    """Why ``target``, linked from ``page``, leads nowhere; None when it resolves."""
    path_part, _, anchor = target.partition("#")
    destination = (page.parent / path_part).resolve() if path_part else page
    if path_part:
        if os.path.commonpath([destination, REPO]) != str(REPO):
            return "outside the repository (a page must stand on its own)"
        if not destination.exists():
            return "missing file"
    if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
        return f"no heading #{anchor} in {destination.relative_to(REPO)}"
    return None


def test_the_link_check_sees_links():
    assert sum(len(relative_links(page)) for page in PAGES) >= 30
    assert broken_link(REPO / "README.md", "docs/no-such-page.md") == "missing file"
    assert broken_link(REPO / "README.md", "#no-such-heading") is not None
    assert slug("Hooks (`hooks/`), one per API") == "hooks-hooks-one-per-api"


def test_relative_links_resolve():
    broken = [
        f"{page.relative_to(REPO)}:{number} -> {target} ({why})"
        for page in PAGES
        for number, target in relative_links(page)
        if (why := broken_link(page, target)) is not None
    ]
    assert not broken, f"{len(broken)} relative link(s) lead nowhere:\n" + "\n".join(broken)
