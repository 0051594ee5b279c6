"""Reading the configuration file: TOML in, validated ``Settings`` out, or every problem listed.

Each problem names its location the way a user finds it in the file
(``buses[1].baud_rate: must be one of 1200, ...``), so ``panelhub check-config`` can print
them all at once instead of one per attempt.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from panelhub.config.models import Settings
from panelhub.errors import ConfigError


def _location(parts: tuple[int | str, ...]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("tcp", "rtu") and text.endswith("]"):
            continue  # the discriminator's own branch name, not a key in the file
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def problems_of(error: ValidationError) -> tuple[str, ...]:
    """One line per validation error: location, then a sentence."""
    lines = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{_location(tuple(item['loc']))}: {message}")
    return tuple(lines)


def parse_settings(data: dict[str, Any]) -> Settings:
    """Validate already-parsed TOML.

    Raises:
        ConfigError: with every problem in ``problems``.
    """
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = problems_of(exc)
        raise ConfigError(
            f"the configuration has {len(problems)} problem(s)", problems=problems
        ) from exc


def load_settings(path: Path) -> Settings:
    """Read and validate a TOML configuration file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or does not validate.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", problems=(str(exc),)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text", problems=(f"{path}: {exc}",)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML", problems=(f"{path}: {exc}",)) from exc
    return parse_settings(data)
