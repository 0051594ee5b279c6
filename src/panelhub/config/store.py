"""Reading the configuration file: TOML in, validated ``Settings`` out, or every problem listed.

Each problem names its location the way a user finds it in the file
(``buses[1].baud_rate: must be one of 1200, ...``), so ``panelhub check-config`` can print
them all at once instead of one per attempt.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from pathlib import Path
from typing import Any, Final

import tomli_w
from pydantic import ValidationError

from panelhub.config.models import Settings
from panelhub.errors import ConfigError

#: Suffix of the copy of the file as it was before the last save: one step back by hand.
PREVIOUS_SUFFIX: Final = ".previous"


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


def settings_toml(settings: Settings, *, header: str = "") -> str:
    """``settings`` as TOML: only what differs from the defaults, so the file stays readable."""
    data = settings.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    for bus in data.get("buses", []):  # the discriminator is always written
        bus.setdefault("kind", "tcp")
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + ("\n" if comment else "") + tomli_w.dumps(data)


def save_settings(path: Path, settings: Settings, *, header: str = "") -> None:
    """Replace the configuration file atomically, keeping the old one as ``*.previous``.

    Written to a temporary file in the same directory, flushed to disk, then renamed over the
    old file: a power cut leaves either the old or the new file, never half of one.

    Raises:
        ConfigError: the file cannot be written (full disk, read-only file system, rights).
    """
    text = settings_toml(settings, header=header)
    temporary = path.with_name(f".{path.name}.saving")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if path.exists():
            previous = path.with_name(path.name + PREVIOUS_SUFFIX)
            previous.unlink(missing_ok=True)
            os.link(path, previous)
        temporary.replace(path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot save {path}: {exc.strerror}", problems=(f"{path}: {exc}",)
        ) from exc
