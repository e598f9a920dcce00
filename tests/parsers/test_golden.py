"""Golden files of every format (STYLE.md practice 8): ``tests/data/<format>/<case>.<ext>``
beside ``<case>.expected.json``, found by glob so none is orphaned.

The expected files are what ``parsers.jsonl.statement_to_dict`` gives for each statement
of the full pipeline (detection and balance check). They are rewritten only when
``RECON_REGENERATE_GOLDEN=1`` is set: review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import parsers
from parsers.jsonl import statement_to_dict
from tests.paths import DATA

REGENERATE = os.environ.get("RECON_REGENERATE_GOLDEN") == "1"
FOLDERS = [DATA / fmt.FAMILY for fmt in parsers.FORMATS]


def inputs() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in folder.iterdir()
                  if p.is_file() and not p.name.endswith(".json"))


def expected_of(path: Path) -> Path:
    return path.with_name(f"{path.stem}.expected.json")


@pytest.mark.parametrize("path", inputs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_file(path: Path) -> None:
    got = [statement_to_dict(s) for s in parsers.parse(path.read_bytes(), source=path.name)]
    expected = expected_of(path)
    if REGENERATE:
        expected.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    assert expected.exists(), f"no {expected.name}: run with RECON_REGENERATE_GOLDEN=1"
    assert got == json.loads(expected.read_text(encoding="utf-8"))


def test_no_expected_file_is_orphaned() -> None:
    have = {expected_of(p) for p in inputs()}
    orphans = [p for folder in FOLDERS for p in folder.glob("*.expected.json") if p not in have]
    assert orphans == []
    assert all(len([p for p in inputs() if p.parent == folder]) >= 6 for folder in FOLDERS)
