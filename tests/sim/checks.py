"""Checks shared by the TCP and RTU tests: the same meters must look the same on both."""

from __future__ import annotations

from collections.abc import Sequence

from pymodbus.client import AsyncModbusTcpClient, ModbusBaseClient
from pymodbus.constants import DeviceInformation
from pymodbus.pdu.mei_message import ReadDeviceInformationResponse

DT = AsyncModbusTcpClient.DATATYPE


def f32(registers: Sequence[int], offset: int) -> float:
    value = AsyncModbusTcpClient.convert_from_registers(registers[offset : offset + 2], DT.FLOAT32)
    assert isinstance(value, float)
    return value


async def check_three_phase(client: ModbusBaseClient, unit_id: int) -> None:
    r = await client.read_holding_registers(2999, count=112, device_id=unit_id)
    assert not r.isError(), r
    regs = r.registers
    i1, i_avg = f32(regs, 0), f32(regs, 10)
    v12, v1n = f32(regs, 20), f32(regs, 28)
    p_total_kw, pf = f32(regs, 60), f32(regs, 84)
    assert 0 < i1 < 200
    assert 0 < i_avg < 200
    assert 392 <= v12 <= 408
    assert 225 <= v1n <= 235
    assert 0 < p_total_kw < 100
    assert 0.85 <= pf <= 0.99
    assert 49.95 <= f32(regs, 110) <= 50.05
    energy = await client.read_holding_registers(3203, count=4, device_id=unit_id)
    energy_wh = AsyncModbusTcpClient.convert_from_registers(energy.registers, DT.INT64)
    assert isinstance(energy_wh, int)
    assert energy_wh > 10_000_000


async def check_single_phase(client: ModbusBaseClient, unit_id: int) -> None:
    r = await client.read_input_registers(0, count=80, device_id=unit_id)
    assert not r.isError(), r
    voltage, current, power_w = f32(r.registers, 0), f32(r.registers, 6), f32(r.registers, 12)
    assert 225 <= voltage <= 235
    assert 0 < power_w < 4000
    assert abs(power_w / (voltage * current) - f32(r.registers, 30)) < 0.01
    assert f32(r.registers, 72) > 800  # kWh


async def check_breaker(client: ModbusBaseClient, unit_id: int) -> None:
    r = await client.read_holding_registers(0, count=22, device_id=unit_id)
    assert not r.isError(), r
    regs = r.registers
    assert 0 < regs[0] < 700  # 0.1 A
    assert 2254 <= regs[3] <= 2346  # 0.1 V
    assert regs[18] & 0x0001  # closed
    assert regs[21] == 63
    bits = await client.read_discrete_inputs(0, count=3, device_id=unit_id)
    assert bits.bits[:2] == [True, False]


async def check_identification(client: ModbusBaseClient, unit_id: int, product_code: bytes) -> None:
    r = await client.read_device_information(read_code=DeviceInformation.REGULAR, device_id=unit_id)
    assert isinstance(r, ReadDeviceInformationResponse), r
    assert r.information[0] == b"PanelHub"
    assert r.information[1] == product_code
    assert r.information[2]
    assert r.information[4].startswith(b"Simulated")


async def check_write_read_back(
    client: ModbusBaseClient, unit_id: int, config_address: int
) -> None:
    label = config_address + 2
    assert not (await client.write_register(config_address, 30, device_id=unit_id)).isError()
    assert not (await client.write_registers(label, [0x4142, 0x4344], device_id=unit_id)).isError()
    r = await client.read_holding_registers(config_address, count=4, device_id=unit_id)
    assert r.registers == [30, 0, 0x4142, 0x4344]
    # FC23: write the alarm mask, read the block back in the same transaction.
    r = await client.readwrite_registers(
        read_address=config_address,
        read_count=2,
        write_address=config_address + 1,
        values=[0x0012],
        device_id=unit_id,
    )
    assert r.registers == [30, 0x0012]
    # FC22, the worked example of Modbus Application Protocol v1.1b3 §6.16:
    # (0x12 AND 0xF2) OR (0x25 AND NOT 0xF2) = 0x17.
    r = await client.mask_write_register(
        address=config_address + 1, and_mask=0x00F2, or_mask=0x0025, device_id=unit_id
    )
    assert not r.isError(), r
    r = await client.read_holding_registers(config_address + 1, count=1, device_id=unit_id)
    assert r.registers == [0x0017]
