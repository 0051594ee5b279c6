"""Values that mean "not a frame yet", kept apart from any real result (h11's NEED_DATA)."""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal


class NeedData(Enum):
    """More bytes must arrive before the decoder can say anything."""

    NEED_DATA = "NEED_DATA"


class FrameEndsAtSilence(Enum):
    """The frame's length cannot be counted: only the line's 3.5-character silence ends it."""

    FRAME_ENDS_AT_SILENCE = "FRAME_ENDS_AT_SILENCE"


NEED_DATA: Final[Literal[NeedData.NEED_DATA]] = NeedData.NEED_DATA
FRAME_ENDS_AT_SILENCE: Final[Literal[FrameEndsAtSilence.FRAME_ENDS_AT_SILENCE]] = (
    FrameEndsAtSilence.FRAME_ENDS_AT_SILENCE
)
