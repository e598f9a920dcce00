"""Every parser through the same bad inputs (STYLE.md practice 8).

Whatever the format, bad input gives a ``ParseError`` that names the document; never
another exception, never a partial result.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

import parsers
from parsers.errors import ParseError

DATA = Path(__file__).resolve().parents[1] / "data"
FORMAT_IDS = [fmt.FAMILY for fmt in parsers.FORMATS]


def fixtures(fmt: ModuleType) -> list[Path]:
    """The golden sample files of one format (everything but the expected outputs)."""
    folder = DATA / fmt.FAMILY
    return sorted(p for p in folder.glob("*") if p.is_file() and not p.name.endswith(".json"))


def other_fixtures(fmt: ModuleType) -> list[Path]:
    return [p for other in parsers.FORMATS if other is not fmt for p in fixtures(other)[:3]]


BAD_INPUTS = {
    "empty": b"",
    "blank": b"   \r\n\t\n",
    "binary": bytes(range(256)) * 4,
    "nul": b"\x00" * 1024,
    "text": b"Dear customer, your statement is attached.\n",
    "html": b"<html><body>Statement</body></html>",
}


@pytest.mark.parametrize("fmt", parsers.FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_a_parse_error_naming_the_source(fmt: ModuleType, name: str) -> None:
    with pytest.raises(ParseError) as caught:
        fmt.parse(BAD_INPUTS[name], source=f"bad-{name}")
    assert caught.value.source == f"bad-{name}"
    assert str(caught.value).startswith(f"bad-{name}")


@pytest.mark.parametrize("fmt", parsers.FORMATS, ids=FORMAT_IDS)
def test_every_format_has_golden_fixtures(fmt: ModuleType) -> None:
    assert len(fixtures(fmt)) >= 3


@pytest.mark.parametrize("fmt", parsers.FORMATS, ids=FORMAT_IDS)
def test_another_formats_document_is_refused(fmt: ModuleType) -> None:
    for path in other_fixtures(fmt):
        data = path.read_bytes()
        assert not fmt.sniff(data[:65536]), f"{fmt.FAMILY} claims {path.name}"
        with pytest.raises(ParseError):
            fmt.parse(data, source=path.name)


@pytest.mark.parametrize("fmt", parsers.FORMATS, ids=FORMAT_IDS)
def test_a_truncated_document_is_refused_not_half_read(fmt: ModuleType) -> None:
    for path in fixtures(fmt):
        data = path.read_bytes()
        # Cut inside the last entry: past the start of the final third of the document.
        cut = data[: len(data) * 2 // 3]
        with pytest.raises(ParseError) as caught:
            fmt.parse(cut, source=path.name)
        assert caught.value.source == path.name


@pytest.mark.parametrize("fmt", parsers.FORMATS, ids=FORMAT_IDS)
def test_golden_fixtures_are_detected_as_their_own_format(fmt: ModuleType) -> None:
    for path in fixtures(fmt):
        assert parsers.detect(path.read_bytes(), source=path.name) is fmt, path.name


def test_unknown_content_names_the_expected_formats() -> None:
    with pytest.raises(parsers.UnknownFormatError, match="MT940") as caught:
        parsers.parse(b"just some text", source="notes.txt")
    assert caught.value.source == "notes.txt"
    with pytest.raises(parsers.UnknownFormatError, match="empty"):
        parsers.parse(b"", source="empty.sta")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "huge.xml"
    with big.open("wb") as handle:  # a sparse gigabyte: nothing is written to disk
        handle.truncate(1024**3)
    with pytest.raises(parsers.TooLargeError, match="over the limit") as caught:
        parsers.parse_path(big)
    assert caught.value.source == str(big)


def test_an_unreadable_path_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read"):
        parsers.parse_path(tmp_path / "missing.sta")
