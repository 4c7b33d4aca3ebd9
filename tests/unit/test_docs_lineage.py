"""docs/lineage.md's Python blocks run as written (each in a namespace of its own)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "lineage.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_the_page_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_python_block_runs(code: str):
    exec(compile(code, str(PAGE), "exec"), {"__name__": "docs_lineage"})
