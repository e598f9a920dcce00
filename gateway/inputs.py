"""The statement files a command is given: files named, and every file under folders named.

Folders are read recursively, in name order, skipping hidden files and folders (a name
starting with ``.``: editor swap files, ``.git``). A name that is neither a file nor a
folder, and a folder with nothing to read, are problems the command reports, never
silently nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def input_files(arguments: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The files to read, and a problem (``NAME: what is wrong``) per argument that
    gives none."""
    files: list[Path] = []
    problems: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
            if not found:
                problems.append(f"{argument}: no files in this folder (hidden files and "
                                f"folders are skipped); name the statement files or the "
                                f"folder that holds them")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            problems.append(f"{argument}: not a regular file or folder")
        else:
            problems.append(f"{argument}: no such file or folder")
    return files, problems
