#!/usr/bin/env python3
"""A Modbus TCP -> RTU forwarder written the way a pymodbus 3.16 user would write one.

pymodbus 3.16 ships no forwarder: the ``RemoteDeviceContext`` of older releases and
the ``serial_forwarder`` example are not in the package. Its documented hook for
"compute the registers when they are read" is a ``SimDevice`` ``action``, so the
forwarder is a ``ModbusTcpServer`` whose device action reads the registers from an
``AsyncModbusSerialClient`` and writes them into the block that the server returns.
Only "read holding registers" is forwarded, which is all the benchmark sends.

Example::

    python bench/gateway/pymodbus_forwarder.py --port 15504 --serial /dev/pts/3 --unit 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
from typing import Final

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

REGISTER_COUNT: Final = 10_000  # the block the server checks addresses against
FC_READ_HOLDING: Final = 0x03
DEFAULT_LIFETIME_S: Final = 1800.0  # a leaked forwarder still exits on its own


async def forward(  # noqa: PLR0917 - the SimAction signature, plus the bound client and unit
    client: AsyncModbusSerialClient,
    unit_id: int,
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    current_registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    if function_code != FC_READ_HOLDING or set_values is not None:
        return ExcCodes.ILLEGAL_FUNCTION
    try:
        result = await client.read_holding_registers(address, count=count, device_id=unit_id)
    except ModbusException:
        return ExcCodes.GATEWAY_NO_RESPONSE
    if result.isError():
        return ExcCodes.GATEWAY_NO_RESPONSE
    offset = address - start_address
    current_registers[offset : offset + count] = result.registers
    return None


async def serve(args: argparse.Namespace) -> None:
    client = AsyncModbusSerialClient(
        args.serial,
        baudrate=args.baud,
        parity=args.parity,
        timeout=args.timeout_s,
        retries=0,
    )
    if not await client.connect():
        raise SystemExit(f"cannot open {args.serial}")
    device = SimDevice(
        id=args.unit,
        simdata=[SimData(0, count=REGISTER_COUNT, datatype=DataType.REGISTERS)],
        action=functools.partial(forward, client, args.unit),
    )
    server = ModbusTcpServer(device, address=(args.host, args.port))
    await server.serve_forever(background=True)
    try:
        await asyncio.sleep(args.lifetime_s)
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call] # pymodbus 3.16 leaves it untyped
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--serial", required=True)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--parity", choices=["N", "E", "O"], default="N")
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=1.0)
    parser.add_argument("--lifetime-s", type=float, default=DEFAULT_LIFETIME_S)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
