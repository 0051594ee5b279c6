"""The sans-IO Modbus codec: bytes in, values out, and back. No sockets, no clock, no asyncio."""

from panelhub.modbus.constants import ExceptionCode, FunctionCode
from panelhub.modbus.decoder import MBAPDecoder, RTUResponseDecoder
from panelhub.modbus.mbap import TCPFrame
from panelhub.modbus.sentinels import FRAME_ENDS_AT_SILENCE, NEED_DATA

__all__ = [
    "FRAME_ENDS_AT_SILENCE",
    "NEED_DATA",
    "ExceptionCode",
    "FunctionCode",
    "MBAPDecoder",
    "RTUResponseDecoder",
    "TCPFrame",
]
