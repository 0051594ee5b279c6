"""Radio services disabled for good: a record that outlives a factory reset.

SECURITY.md ("Services and network"): Wi-Fi and IEEE 802.15.4 can be disabled permanently,
irreversibly, and the choice survives a factory reset. A panel server keeps it in one-time
programmable memory; PanelHub keeps it in a directory apart from the data directory (the
reset empties that one), one empty file per service, never removed by any command of ours.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Final

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


class RadioService(StrEnum):
    WIFI = "wifi"
    WIFI_ACCESS_POINT = "wifi-ap"
    IEEE_802_15_4 = "ieee802154"


def disable_permanently(directory: Path, service: RadioService) -> bool:
    """Record ``service`` as disabled for good; False if it already was."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path = directory / service.value
    if path.exists():
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, b"disabled permanently\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory_fd)  # the record is durable before the command says it is done
    finally:
        os.close(directory_fd)
    return True


def permanently_disabled(directory: Path) -> frozenset[RadioService]:
    if not directory.is_dir():
        return frozenset()
    names = {path.name for path in directory.iterdir()}
    return frozenset(service for service in RadioService if service.value in names)


def permanent_dir(data_dir: Path) -> Path:
    """Beside the data directory, not in it: ``/var/lib/panelhub-permanent`` for the default."""
    return data_dir.with_name(f"{data_dir.name}-permanent")
