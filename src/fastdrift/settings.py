"""Reading the settings files people write (monitor configs, alert rules): YAML or TOML.

YAML through ``yaml.safe_load`` (no Python objects from a file), TOML through the standard
library's ``tomllib`` (``tomli`` on 3.10).  Every failure is an InvalidInputError naming the
file: its extension, a read error, or the parser's message with its line.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from .errors import InvalidInputError

__all__ = ["read_file"]


def read_file(path, what: str) -> Any:
    """The data of a ``.yaml`` / ``.yml`` / ``.toml`` file (``what`` names it in errors: "config file")."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".yaml", ".yml", ".toml"):
        raise InvalidInputError(f"{what} {path!r}: unknown extension {ext!r}; use .yaml, .yml or .toml")
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except OSError as exc:
        raise InvalidInputError(f"{what} {path!r}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{what} {path!r}: not UTF-8: {exc}") from None
    if ext == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - 3.10 only
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(f"{what} {path!r}: invalid TOML: {exc}") from None
    import yaml  # only settings files need it
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{what} {path!r}: invalid YAML: {exc}") from None
