"""The documents others rely on stay true to the code."""

from __future__ import annotations

import ast
import dataclasses
import re
import tomllib
from pathlib import Path

from parsers.model import Account, Entry, Statement, Transaction

ROOT = Path(__file__).resolve().parents[1]


def test_every_field_of_the_json_form_is_documented() -> None:
    doc = (ROOT / "docs" / "parse-output.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_]+)`", doc))
    for model in (Statement, Entry, Account, Transaction):
        for f in dataclasses.fields(model):
            assert f.name in documented, f"{model.__name__}.{f.name} is not in parse-output.md"


def test_the_readme_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci


def test_the_role_table_is_generated_from_the_routes() -> None:
    from gateway import route_docs

    committed = (ROOT / "docs" / "roles.md").read_text(encoding="utf-8")
    assert committed == route_docs.render(), (
        f"docs/roles.md is stale: regenerate it with `.venv/bin/{route_docs.REGENERATE}`")


def test_the_readme_leaves_the_roles_to_the_generated_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = next(p for p in readme.split("\n\n") if p.startswith("Roles:"))
    assert "(docs/roles.md)" in paragraph


def test_the_example_configuration_names_every_setting_with_its_default() -> None:
    from gateway import settings

    path = ROOT / "examples" / "recon-gateway.toml"
    text = path.read_text(encoding="utf-8")
    assert settings.load(config_file=path, environ={}) == settings.Settings()
    given = tomllib.loads(text)
    for setting in settings.SETTINGS:
        if setting.secret:  # shown commented out: a secret belongs in the environment
            assert re.search(rf"^# {setting.name} = ", text, re.MULTILINE), setting.name
            assert setting.name not in given
        else:
            assert given.get(setting.name) == setting.default, (
                f"examples/recon-gateway.toml: {setting.name} should be {setting.default!r}")


def test_an_installed_copy_holds_every_package() -> None:
    """The container image installs the project as a wheel (not editable): a package
    missing from pyproject's list would be missing there (gateway.store once was)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        listed = set(tomllib.load(handle)["tool"]["setuptools"]["packages"])
    tops = ("connectors", "gateway", "matching", "parsers", "security")
    found = {str(p.parent.relative_to(ROOT)).replace("/", ".")
             for top in tops for p in (ROOT / top).rglob("*.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


# What each package may import of ours, as docs/architecture.md says.
MAY_IMPORT = {
    "parsers": {"parsers"},
    "matching": {"matching", "parsers"},
    "security": {"security"},
    "connectors": {"connectors"},
    "gateway": {"gateway", "parsers", "matching", "security", "connectors"},
}


def test_packages_import_only_what_the_architecture_allows() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "Nothing imports `gateway`" in doc
    for package, allowed in MAY_IMPORT.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".", 1)[0]
                    assert top not in MAY_IMPORT or top in allowed, (
                        f"{path.relative_to(ROOT)} imports {name}: {package} may import "
                        f"only {sorted(allowed)} of ours (docs/architecture.md)")


def test_nothing_points_outside_the_repository() -> None:
    """Readers have the repository alone: no document or docstring may send them to notes
    kept beside it (the corpus is looked for there by tests/corpus.py, its one place)."""
    outside = ("../" + "shared", "DESIGN" + ".md")
    skip = {".git", ".venv", "recon-data", "recon-demo", "build", "__pycache__"}
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if (not path.is_file() or skip.intersection(parts) or parts[0].startswith(".")
                or parts[0].endswith(".egg-info") or path.suffix in (".pyc", ".xml", ".sta")
                or parts == ("tests", "corpus.py")):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in outside:
            assert needle not in text, f"{path.relative_to(ROOT)} mentions {needle}"


_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCED = re.compile(r"```.*?```", re.DOTALL)


def _anchors(path: Path) -> set[str]:
    """The anchors a Markdown viewer makes of a file's headings (GitHub's rule)."""
    text = _FENCED.sub("", path.read_text(encoding="utf-8"))
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_every_link_between_the_documents_leads_somewhere() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = _FENCED.sub("", doc.read_text(encoding="utf-8"))
        for target in _LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            name, _, anchor = target.partition("#")
            path = (doc.parent / name).resolve() if name else doc
            where = f"{doc.relative_to(ROOT)} links to {target}"
            assert path.exists(), f"{where}: no such file"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{where}: no such heading"
