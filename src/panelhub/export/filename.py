r"""The name of a published or downloaded CSV file, as the reference device names them.

``ReducedID_DeviceName_DateTime.csv`` (``_IndexNumber`` before ``.csv`` when one publication
holds several files of a device), DateTime being ``YYYYMMDDhhmmssSSS``. Only UTF-8 and ASCII
0x20-0x7F except ``\ / : * ? " < > |`` are allowed; anything else becomes ``~``
(reference-device.md §1.6, CSV file rules). The rule also keeps a device name from reaching
outside the publication directory: no separator survives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

#: Characters the reference replaces: the Windows reserved set, so files copy to any share.
FORBIDDEN_CHARACTERS: Final = frozenset('\\/:*?"<>|')
#: What replaces a forbidden character (reference-device.md §1.6).
REPLACEMENT: Final = "~"


def safe_name_part(text: str) -> str:
    """Return ``text`` with every character a file name may not hold replaced by ``~``."""
    return "".join(
        REPLACEMENT if char in FORBIDDEN_CHARACTERS or _is_control(char) else char for char in text
    )


def csv_file_name(
    reduced_id: str, device_name: str, at: datetime, *, index: int | None = None
) -> str:
    """Return the file name for one device's CSV created at ``at``.

    Args:
        reduced_id: the device's short protocol id, e.g. ``10_mb`` for a Modbus device.
        device_name: the device's name as the user typed it.
        at: the publication or download time, in the time zone the file name should show.
        index: the file's number within one publication (``_1`` ... ``_N``), if several.

    Raises:
        ValueError: ``at`` has no time zone (the name would depend on the host's zone).
    """
    if at.tzinfo is None:
        raise ValueError("the file time needs a time zone")
    stamp = at.strftime("%Y%m%d%H%M%S") + f"{at.microsecond // 1000:03d}"
    suffix = "" if index is None else f"_{index}"
    return f"{safe_name_part(reduced_id)}_{safe_name_part(device_name)}_{stamp}{suffix}.csv"


def _is_control(char: str) -> bool:
    # ASCII controls (0x00-0x1F, 0x7F) and the C1 range are outside what the reference allows.
    code = ord(char)
    return code < 0x20 or 0x7F <= code < 0xA0
