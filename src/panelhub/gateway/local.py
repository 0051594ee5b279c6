"""The gateway's own Modbus server on unit 255: identity, health and clock.

Holding register table (0-based address = the reference device's 1-based register number - 1;
each string is ASCII, two characters per register, NUL padded):

=======  =====  ======  ==============================================================
address  count  access  content
=======  =====  ======  ==============================================================
10       16     R       product range ("PanelHub")
26       16     R       product family / model name
42       17     R       vendor URL
60       16     R       commercial reference (product code)
80       6      R       hardware version
100      6      R       serial number (12 characters)
115      4      R/W     date and time, IEC 60870-5 (writable if ``allow_set_clock``)
120      6      R       firmware version ("000.001.000")
158      1      R       health: 0 nominal, 1 degraded, 2 out of order
159      16     R       manufacturer (vendor name)
5637     32     R       user application name
=======  =====  ======  ==============================================================

Function codes 3 and 4 read the same table; 6 and 16 write the clock; 43/14 answers device
identification. Anything else gets exception 01, an address outside the table 02.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from enum import IntEnum
from typing import Final, Protocol

from panelhub import __version__
from panelhub.config.models import IdentityConfig
from panelhub.errors import IllegalRequestError, LocalProtocolError, RemoteProtocolError
from panelhub.modbus import pdu as pdus
from panelhub.modbus.constants import ExceptionCode, FunctionCode
from panelhub.modbus.datatypes import IECDateTime, encode_string

logger = logging.getLogger(__name__)
audit = logging.getLogger("panelhub.audit")

CLOCK_ADDRESS: Final = 115
HEALTH_ADDRESS: Final = 158
CLOCK_COUNT: Final = 4


class ClockSink(Protocol):
    """Where a clock set over Modbus is reported (the service: the audit log)."""

    def __call__(
        self, *, client: str, listener: str, set_to: dt.datetime, offset: dt.timedelta
    ) -> None: ...


class Health(IntEnum):
    NOMINAL = 0
    DEGRADED = 1
    OUT_OF_ORDER = 2


def firmware_version() -> str:
    """The package version in the reference's "MMM.mmm.ppp" register format."""
    parts = [int(part) if part.isdigit() else 0 for part in __version__.split(".")[:3]]
    return ".".join(f"{part:03d}" for part in parts + [0] * (3 - len(parts)))


class LocalServer:
    """Answers requests addressed to the gateway itself.

    Args:
        identity: what to report.
        health: called at each read of the health register.
        now: the wall clock, local time zone (injected so tests control it).
        allow_set_clock: whether writes to the clock are accepted.
    """

    def __init__(
        self,
        identity: IdentityConfig,
        *,
        health: Callable[[], Health],
        now: Callable[[], dt.datetime],
        allow_set_clock: bool = False,
    ) -> None:
        self._identity = identity
        self._health = health
        self._now = now
        self._allow_set_clock = allow_set_clock
        self._clock_offset = dt.timedelta()
        self._static = self._static_registers(identity)
        #: Told of every clock change; None: the ``panelhub.audit`` logger is.
        self.on_clock_set: ClockSink | None = None

    @property
    def clock_offset(self) -> dt.timedelta:
        """How far the gateway clock set over Modbus is from the host clock."""
        return self._clock_offset

    @clock_offset.setter
    def clock_offset(self, offset: dt.timedelta) -> None:
        # Carried over when new settings rebuild this server: a SCADA set the time once.
        self._clock_offset = offset

    def handle(self, pdu: bytes, *, client: str = "", listener: str = "") -> bytes:
        """The response PDU to ``pdu``, an exception response when it must be refused.

        ``client`` and ``listener`` say who asked, for the record of a clock change.
        """
        try:
            request = pdus.decode_request(pdu)
            if isinstance(request, pdus.ReadRequest):
                values = self._read(request.address, request.count)
                return pdus.encode_read_registers_response(request.function_code, values)
            if isinstance(request, pdus.ReadDeviceIdentificationRequest):
                return self._identification(request)
            if isinstance(request, pdus.WriteSingleRegisterRequest):
                self._write(request.address, (request.value,), client, listener)
                return pdu
            self._write(request.address, request.values, client, listener)
            return pdu[:5]
        except IllegalRequestError as exc:
            return pdus.exception_pdu(pdu[0] if pdu else 0, exc.exception_code)

    # -- registers

    @staticmethod
    def _static_registers(identity: IdentityConfig) -> dict[int, int]:
        blocks = (
            (10, 16, "PanelHub"),
            (26, 16, identity.model_name),
            (42, 17, identity.vendor_url),
            (60, 16, identity.product_code),
            (80, 6, "000.000.001"),
            (100, 6, identity.serial_number),
            (120, 6, firmware_version()),
            (159, 16, identity.vendor_name),
            (5637, 32, identity.user_application_name),
        )
        table: dict[int, int] = {}
        for address, count, text in blocks:
            for offset, value in enumerate(encode_string(text, count)):
                table[address + offset] = value
        return table

    def _read(self, address: int, count: int) -> tuple[int, ...]:
        values = []
        clock: tuple[int, ...] | None = None
        for current in range(address, address + count):
            if current == HEALTH_ADDRESS:
                values.append(int(self._health()))
            elif CLOCK_ADDRESS <= current < CLOCK_ADDRESS + CLOCK_COUNT:
                clock = clock or self._clock_words()
                values.append(clock[current - CLOCK_ADDRESS])
            elif current in self._static:
                values.append(self._static[current])
            else:
                raise IllegalRequestError(
                    f"register {current} is not in unit 255's table",
                    exception_code=ExceptionCode.ILLEGAL_DATA_ADDRESS,
                )
        return tuple(values)

    def _clock_words(self) -> tuple[int, ...]:
        now = self._now() + self._clock_offset
        return IECDateTime(
            year=now.year,
            month=now.month,
            day=now.day,
            hour=now.hour,
            minute=now.minute,
            millisecond=now.second * 1000 + now.microsecond // 1000,
        ).encode()

    def _write(self, address: int, values: tuple[int, ...], client: str, listener: str) -> None:
        is_clock = address == CLOCK_ADDRESS and len(values) == CLOCK_COUNT
        if not (is_clock and self._allow_set_clock):
            raise IllegalRequestError(
                "only the clock (4 registers at address 115) is writable, when allowed",
                exception_code=ExceptionCode.ILLEGAL_DATA_ADDRESS,
            )
        try:
            stamp = IECDateTime.decode(values)
            wanted = dt.datetime(
                stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute,
                stamp.millisecond // 1000, (stamp.millisecond % 1000) * 1000,
                tzinfo=self._now().tzinfo,
            )  # fmt: skip
        except (RemoteProtocolError, LocalProtocolError, ValueError) as exc:
            raise IllegalRequestError(
                f"invalid date/time: {exc}", exception_code=ExceptionCode.ILLEGAL_DATA_VALUE
            ) from exc
        self._clock_offset = wanted - self._now()
        if self.on_clock_set is not None:
            self.on_clock_set(
                client=client, listener=listener, set_to=wanted, offset=self._clock_offset
            )
        else:
            audit.info("gateway clock set over Modbus to %s by %s", wanted.isoformat(), client)

    # -- device identification (§6.21)

    def _identification(self, request: pdus.ReadDeviceIdentificationRequest) -> bytes:
        identity = self._identity
        objects = {
            0x00: identity.vendor_name,
            0x01: identity.product_code,
            0x02: __version__,
            0x03: identity.vendor_url,
            0x04: identity.product_name,
            0x05: identity.model_name,
            0x06: identity.user_application_name,
            0x80: identity.serial_number,  # first private (extended) object
        }
        if request.read_code == 4:
            if request.object_id not in objects:
                raise IllegalRequestError(
                    f"no identification object {request.object_id}",
                    exception_code=ExceptionCode.ILLEGAL_DATA_ADDRESS,
                )
            wanted = [request.object_id]
        else:
            upper = {1: 0x02, 2: 0x06, 3: 0xFF}[request.read_code]
            wanted = [oid for oid in objects if request.object_id <= oid <= upper]
        return pdus.encode_device_identification_response(
            request.read_code,
            [(oid, objects[oid].encode("ascii", errors="replace")) for oid in wanted],
        )


SUPPORTED_FUNCTION_CODES: Final = frozenset(
    {
        FunctionCode.READ_HOLDING_REGISTERS,
        FunctionCode.READ_INPUT_REGISTERS,
        FunctionCode.WRITE_SINGLE_REGISTER,
        FunctionCode.WRITE_MULTIPLE_REGISTERS,
        FunctionCode.ENCAPSULATED_INTERFACE,
    }
)
