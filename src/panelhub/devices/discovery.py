"""Finding devices: ask each address of a line (or each TCP host) who it is, and match templates.

Theory of operation:
- Each address gets one Read Device Identification (43/14, basic objects). An answer, even
  a Modbus exception, means a device is there; silence (a timeout) means nobody is, and the
  scan moves on. A whole RS-485 line is 247 addresses: with a 1 s timeout a scan takes about
  4 minutes, hence the progress record and the cancel.
- A device that names itself is matched against the templates' ``product_code`` and
  ``vendor_name`` patterns; otherwise (or with no match) each template's probe registers are
  read, and a template whose every probe answers an accepted value matches. The first match
  in template id order wins, so the result does not depend on file order.
- Reads go through the Bus at poll priority: a scan never holds up SCADA traffic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from panelhub.devices.template import DeviceTemplate, Probe
from panelhub.errors import (
    DiscoveryCancelledError,
    ModbusError,
    ModbusExceptionError,
    TransportError,
)
from panelhub.modbus import pdu as pdus
from panelhub.modbus.constants import FunctionCode
from panelhub.transport.bus import Bus, Priority

logger = logging.getLogger(__name__)

#: Basic identification objects (§6.21): vendor name, product code, revision.
VENDOR_NAME: Final = 0x00
PRODUCT_CODE: Final = 0x01
REVISION: Final = 0x02


class ScanState(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FoundDevice:
    bus: str
    unit_id: int
    vendor_name: str = ""
    product_code: str = ""
    revision: str = ""
    #: The matching template's id; None when the device answered but no template fits.
    model: str | None = None
    #: Where the bus reaches: "host:port" of a TCP link, the serial device of a line.
    peer: str = ""


@dataclass(slots=True)
class ScanProgress:
    """What a running scan has done so far; the discovery page shows it while it runs."""

    total: int
    done: int = 0
    found: list[FoundDevice] = field(default_factory=list)
    state: ScanState = ScanState.RUNNING
    error: str = ""
    _cancel: asyncio.Event = field(default_factory=asyncio.Event)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()


async def scan(
    bus: Bus,
    unit_ids: Sequence[int],
    templates: Sequence[DeviceTemplate],
    *,
    progress: ScanProgress,
    timeout_s: float,
) -> list[FoundDevice]:
    """Ask every address of ``unit_ids`` on ``bus``; see :func:`scan_all`."""
    return await scan_all([(bus, unit_ids)], templates, progress=progress, timeout_s=timeout_s)


async def scan_all(
    targets: Sequence[tuple[Bus, Sequence[int]]],
    templates: Sequence[DeviceTemplate],
    *,
    progress: ScanProgress,
    timeout_s: float,
) -> list[FoundDevice]:
    """Ask every address of every (bus, unit IDs) target in turn; see the module docstring.

    Raises:
        DiscoveryCancelledError: ``progress.cancel()`` was called; ``progress.found`` keeps
            what was found before.

    """
    ordered = sorted(templates, key=lambda template: template.id)
    for bus, unit_ids in targets:
        for unit_id in unit_ids:
            if progress.is_cancelled:
                progress.state = ScanState.CANCELLED
                raise DiscoveryCancelledError(f"scan of {bus.name} cancelled at address {unit_id}")
            found = await identify(bus, unit_id, ordered, timeout_s=timeout_s)
            if found is not None:
                progress.found.append(found)
            progress.done += 1
    progress.state = ScanState.FINISHED
    return progress.found


async def identify(
    bus: Bus, unit_id: int, templates: Sequence[DeviceTemplate], *, timeout_s: float
) -> FoundDevice | None:
    """The device at ``unit_id`` with its template, or None when nobody answers there."""
    request = pdus.ReadDeviceIdentificationRequest(read_code=1).encode()
    objects: dict[int, bytes] = {}
    try:
        response = await bus.execute(unit_id, request, priority=Priority.POLL, timeout_s=timeout_s)
        objects = pdus.decode_device_identification_response(response, unit_id=unit_id).objects
    except ModbusExceptionError:
        pass  # a device that does not implement 43/14: it is there; probes will tell
    except TransportError:
        return None
    except ModbusError as exc:  # it answered, with something malformed: there, unidentified
        logger.info("bus %s address %d: unreadable identification: %s", bus.name, unit_id, exc)
    texts = {oid: value.decode("ascii", errors="replace").strip() for oid, value in objects.items()}
    found = FoundDevice(
        bus.name,
        unit_id,
        peer=bus.link.peer,
        vendor_name=texts.get(VENDOR_NAME, ""),
        product_code=texts.get(PRODUCT_CODE, ""),
        revision=texts.get(REVISION, ""),
    )
    for template in templates:
        if _matches_identity(template, found) or await _matches_probes(
            bus, unit_id, template, timeout_s=timeout_s
        ):
            return dataclasses.replace(found, model=template.id)
    return found


def _matches_identity(template: DeviceTemplate, found: FoundDevice) -> bool:
    rule = template.identification
    if rule.product_code is None and rule.vendor_name is None:
        return False
    if not found.product_code and not found.vendor_name:
        return False
    checks = ((rule.product_code, found.product_code), (rule.vendor_name, found.vendor_name))
    return all(pattern is None or pattern.search(text) for pattern, text in checks)


async def _matches_probes(
    bus: Bus, unit_id: int, template: DeviceTemplate, *, timeout_s: float
) -> bool:
    probes = template.identification.probes
    if not probes:
        return False
    for probe in probes:
        try:
            registers = await _read_probe(bus, unit_id, probe, timeout_s=timeout_s)
        except ModbusError:
            return False
        if not probe.matches(registers):
            return False
    return True


async def _read_probe(bus: Bus, unit_id: int, probe: Probe, *, timeout_s: float) -> tuple[int, ...]:
    code = FunctionCode(probe.function)
    wire = pdus.ReadRequest(code, probe.address, probe.data_type.register_count).encode()
    response = await bus.execute(unit_id, wire, priority=Priority.POLL, timeout_s=timeout_s)
    return pdus.decode_read_registers_response(response, unit_id=unit_id, function_code=code)
