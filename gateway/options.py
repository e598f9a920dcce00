"""Command-line options shared by the commands that use the database."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from gateway.embedded import start_embedded
from gateway.settings import Settings, load


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder of the embedded database "
                        "(default ./recon-data; env RECON_DATA_DIR)")
    parser.add_argument("--database-url", help="use this PostgreSQL server instead of the "
                        "embedded one (env RECON_DATABASE_URL)")
    parser.add_argument("--config", type=Path, help="TOML settings file (env RECON_CONFIG)")


def settings_of(args: argparse.Namespace, **extra: Any) -> Settings:
    options = {"data_dir": args.data_dir, "database_url": args.database_url, **extra}
    return load(options, config_file=args.config)


def with_database(settings: Settings) -> Settings:
    """The settings with a database URL: the configured one, else the embedded server's."""
    if settings.database_url:
        return settings
    url = start_embedded(Path(settings.data_dir))
    return dataclasses.replace(settings, database_url=url)
