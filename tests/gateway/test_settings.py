from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.settings import SETTINGS, Settings, SettingsError, load

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented_with_its_default() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for setting in SETTINGS:
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{setting.name}`")),
                   None)
        assert row is not None, f"{setting.name} is not in docs/configuration.md"
        if setting.default is not None:
            assert f"`{setting.default}`" in row, f"{setting.name}: default not documented"
    assert [s.name for s in SETTINGS] == [f.name for f in dataclasses.fields(Settings)]
    assert all(getattr(Settings(), s.name) == s.default for s in SETTINGS)


def test_precedence_is_option_then_environment_then_file_then_default(tmp_path: Path) -> None:
    config = tmp_path / "recon.toml"
    config.write_text('port = 9001\nhost = "0.0.0.0"\nlog_level = "DEBUG"\n')
    environ = {"RECON_PORT": "9002", "RECON_HOST": "10.0.0.1"}
    settings = load({"port": 9003, "host": None}, environ=environ, config_file=config)
    assert (settings.port, settings.host, settings.log_level, settings.tenant) == (
        9003, "10.0.0.1", "DEBUG", "default")


def test_bad_values_and_unknown_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="port: expected int"):
        load(environ={"RECON_PORT": "eighty"})
    config = tmp_path / "recon.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match=r"unknown settings \['prot'\]"):
        load(environ={}, config_file=config)


def test_secrets_are_masked_in_what_is_logged() -> None:
    settings = Settings(database_url="postgresql://u:hunter2@db/x")
    assert "hunter2" not in repr(settings.public())
    assert settings.public()["database_url"] == "***"
