"""Function codes, exception codes and the size limits of the Modbus protocol.

Sources: Modbus Application Protocol Specification v1.1b3 (MBAP), Modbus Messaging on TCP/IP
Implementation Guide v1.0b, Modbus over Serial Line v1.02.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class FunctionCode(IntEnum):
    """Public function codes (Application Protocol v1.1b3 §5.1)."""

    READ_COILS = 0x01
    READ_DISCRETE_INPUTS = 0x02
    READ_HOLDING_REGISTERS = 0x03
    READ_INPUT_REGISTERS = 0x04
    WRITE_SINGLE_COIL = 0x05
    WRITE_SINGLE_REGISTER = 0x06
    READ_EXCEPTION_STATUS = 0x07
    DIAGNOSTICS = 0x08
    GET_COMM_EVENT_COUNTER = 0x0B
    GET_COMM_EVENT_LOG = 0x0C
    WRITE_MULTIPLE_COILS = 0x0F
    WRITE_MULTIPLE_REGISTERS = 0x10
    REPORT_SERVER_ID = 0x11
    READ_FILE_RECORD = 0x14
    WRITE_FILE_RECORD = 0x15
    MASK_WRITE_REGISTER = 0x16
    READ_WRITE_MULTIPLE_REGISTERS = 0x17
    READ_FIFO_QUEUE = 0x18
    ENCAPSULATED_INTERFACE = 0x2B


class ExceptionCode(IntEnum):
    """Exception codes (Application Protocol v1.1b3 §7)."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SERVER_DEVICE_BUSY = 0x06
    MEMORY_PARITY_ERROR = 0x08
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_FAILED_TO_RESPOND = 0x0B


#: MEI type of Read Device Identification inside function 43 (§6.21).
MEI_READ_DEVICE_IDENTIFICATION: Final = 0x0E
#: The high bit of the function code marks an exception response (§7).
EXCEPTION_FLAG: Final = 0x80

#: Largest PDU: the RS-485 ADU limit of 256 bytes minus address and CRC (§4.1).
MAX_PDU_SIZE: Final = 253
#: MBAP header: transaction ID, protocol ID, length, unit ID (§4.1, TCP guide §3.1.3).
MBAP_HEADER_SIZE: Final = 7
#: The MBAP length field counts the unit ID and the PDU: at most 1 + 253. A larger value is
#: refused before anything is buffered, so a hostile client cannot make us hold more.
MAX_MBAP_LENGTH: Final = MAX_PDU_SIZE + 1
#: Smallest MBAP length: the unit ID and a function code.
MIN_MBAP_LENGTH: Final = 2
MAX_TCP_ADU_SIZE: Final = MBAP_HEADER_SIZE - 1 + MAX_MBAP_LENGTH
#: Modbus over Serial Line v1.02 §2.5.1: address + PDU + CRC.
MAX_RTU_ADU_SIZE: Final = 1 + MAX_PDU_SIZE + 2
#: Shortest RTU frame: address, function code, CRC (an exception adds one byte).
MIN_RTU_ADU_SIZE: Final = 4
#: Unit ID 0 on a serial line is a broadcast: every server acts, none answers (§2.2).
BROADCAST_UNIT_ID: Final = 0

#: Count limits per request (§6.1-§6.4, §6.11, §6.12, §6.17).
MAX_READ_BITS: Final = 2000
MAX_READ_REGISTERS: Final = 125
MAX_WRITE_BITS: Final = 1968
MAX_WRITE_REGISTERS: Final = 123
MAX_READ_WRITE_WRITE_REGISTERS: Final = 121

#: Function codes that can change a server's state. Read-only listeners refuse them; the list
#: errs on the side of refusing (diagnostics can restart a device's communications, §6.8).
WRITE_FUNCTION_CODES: Final = frozenset(
    {
        FunctionCode.WRITE_SINGLE_COIL,
        FunctionCode.WRITE_SINGLE_REGISTER,
        FunctionCode.DIAGNOSTICS,
        FunctionCode.WRITE_MULTIPLE_COILS,
        FunctionCode.WRITE_MULTIPLE_REGISTERS,
        FunctionCode.WRITE_FILE_RECORD,
        FunctionCode.MASK_WRITE_REGISTER,
        FunctionCode.READ_WRITE_MULTIPLE_REGISTERS,
    }
)
