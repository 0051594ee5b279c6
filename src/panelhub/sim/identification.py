"""Read Device Identification (function 43 / MEI 14) answered per unit ID.

pymodbus 3.16 answers function 43/14 from ``ModbusControlBlock``, a process-wide singleton:
every server and every unit in one process would report the same identity, and
``SimDevice.identity`` is stored but never read. This module supplies a request class, passed to
the server through its public ``custom_pdu`` parameter, that looks the identity up by unit ID.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Final

from pymodbus.constants import DeviceInformation, ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.device import DeviceInformationFactory, ModbusDeviceIdentification
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest, ReadDeviceInformationResponse

MEI_READ_DEVICE_IDENTIFICATION: Final = 0x0E  # Modbus Application Protocol v1.1b3 §6.21
PRIVATE_OBJECTS_START: Final = 0x80  # §6.21: 0x07..0x7F are reserved, 0x80..0xFF private


def device_identification_request(
    identities: Mapping[int, ModbusDeviceIdentification],
) -> type[ModbusPDU]:
    """Return a function-43 request class that answers from ``identities[unit_id]``."""

    class PerUnitReadDeviceInformationRequest(ReadDeviceInformationRequest):
        # pymodbus swaps a decoded PDU for the class registered in its global sub-function
        # table when ``sub_function_code >= 0``; keeping it negative keeps this class in charge,
        # and the MEI type is checked here instead.
        mei_type = MEI_READ_DEVICE_IDENTIFICATION

        @classmethod
        def decode_sub_function_code(cls, data: bytes) -> int:
            del data
            return -1

        def decode(self, data: bytes) -> None:
            super().decode(data)
            self.mei_type, self.sub_function_code = self.sub_function_code, -1

        async def datastore_update(self, context: object, device_id: int) -> ModbusPDU:
            del context
            identity = identities.get(device_id)
            if self.mei_type != MEI_READ_DEVICE_IDENTIFICATION or identity is None:
                return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_FUNCTION)
            if not DeviceInformation.BASIC <= self.read_code <= DeviceInformation.SPECIFIC:
                return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_VALUE)
            control = SimpleNamespace(Identity=identity)
            # pymodbus leaves DeviceInformationFactory.get unannotated.
            information = DeviceInformationFactory.get(  # type: ignore[no-untyped-call]
                control, self.read_code, self.object_id
            )
            if self.read_code == DeviceInformation.SPECIFIC and (
                0x07 <= self.object_id < PRIVATE_OBJECTS_START
                or not information.get(self.object_id)
            ):
                return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_ADDRESS)
            return ReadDeviceInformationResponse(
                read_code=self.read_code,
                information=information,
                dev_id=device_id,
                transaction_id=self.transaction_id,
            )

    return PerUnitReadDeviceInformationRequest
