"""Lines joined into chunks of bounded size, for sending an export over HTTP.

A raw export yields one short string per row: a million rows sent one by one would be a
million ASGI messages. Chunks of about 64 KiB keep the response fast and memory still bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

#: Chunk size: large enough that per-message overhead vanishes, small enough to stay far
#: below any memory concern (a few chunks in flight at most).
CHUNK_CHARS: Final = 64 * 1024


def chunks(lines: Iterable[str], *, max_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """Yield the lines joined into strings of about ``max_chars`` (a longer line stays whole)."""
    pending: list[str] = []
    size = 0
    for line in lines:
        pending.append(line)
        size += len(line)
        if size >= max_chars:
            yield "".join(pending)
            pending.clear()
            size = 0
    if pending:
        yield "".join(pending)
