"""The demo installation: simulated meters, and the gateway configured in front of them.

Everything listens on loopback. The RTU meters share one pseudo-terminal line, reached
transparently (units 1-3); each TCP meter gets a virtual unit ID from 100 up, as an integrator
would configure them. The configuration used is written to the data directory (0600) so a
user can read it, copy it and run it with ``panelhub run --config``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from panelhub import service
from panelhub.config.models import Settings
from panelhub.config.store import parse_settings
from panelhub.sim import SimulatorHandle, default_demo_spec, run_simulator
from panelhub.sim.device import SimulatedDevice
from panelhub.sim.templated import TEMPLATE_KINDS

logger = logging.getLogger(__name__)

DEFAULT_MODBUS_PORT: Final = 5020  # 502 needs root; 5020 reads as "502, unprivileged"
DEFAULT_DATA_DIR: Final = Path("var")
DEFAULT_WEB_PORT: Final = 8443  # 443 needs root
#: Virtual unit IDs of the TCP meters start here (the reference device numbers its virtual
#: servers from 100 too).
FIRST_VIRTUAL_UNIT_ID: Final = 100
#: The simulator's own template for each kind of simulated meter.
KIND_TEMPLATES: Final = {kind: template for template, kind in TEMPLATE_KINDS.items()}
#: What each demo meter measures for, by its label: usage and zone for the energy pages.
DEMO_USES: Final = {
    "Main incomer": ("main", "Building"),
    "Office sockets": ("office-equipment", "Offices"),
    "Feeder Q1": ("other", "Ground floor"),
    "HVAC": ("hvac", "Roof"),
    "Lighting": ("lighting", "Offices"),
    "Workshop": ("machine", "Workshop"),
    "Kitchen": ("cooking", "Ground floor"),
    "Feeder Q7": ("other", "Workshop"),
}
#: Logging period of the demo's devices: trends fill up within minutes.
DEMO_PERIOD_MIN: Final = 1


def demo_settings(
    handle: SimulatorHandle, *, modbus_port: int, web_port: int = DEFAULT_WEB_PORT,
    data_dir: Path = DEFAULT_DATA_DIR,
) -> dict[str, Any]:  # fmt: skip
    """The demo's configuration, as the TOML file would hold it."""
    buses: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    for index, line in enumerate(handle.rtu):
        # A pseudo-terminal has no parity bit (Linux refuses to set one): 8N1 on the client
        # side, while the simulated line keeps its 8E1 timing.
        buses.append({"kind": "rtu", "name": f"rs485-{index + 1}", "device": line.client_path,
                      "baud_rate": line.line.baud_rate, "parity": "N",
                      "response_timeout_s": 0.5})  # fmt: skip
        devices += demo_devices(buses[-1]["name"], line.meters)
    unit_id = FIRST_VIRTUAL_UNIT_ID
    for index, endpoint in enumerate(handle.tcp):
        name = f"tcp-{index + 1}"
        buses.append({"kind": "tcp", "name": name, "host": endpoint.host, "port": endpoint.port})
        for target in sorted(endpoint.meters):
            routes.append({"unit_id": unit_id, "bus": name, "target_unit_id": target})
            unit_id += 1
        devices += demo_devices(name, endpoint.meters)
    return {
        "data_dir": str(data_dir.resolve()),
        "web": {"host": "127.0.0.1", "port": web_port},
        "gateway": {"default_bus": buses[0]["name"]},
        "listeners": [{"name": "demo", "host": "127.0.0.1", "port": modbus_port}],
        "buses": buses,
        "routes": routes,
        "devices": devices,
    }


def demo_devices(bus: str, meters: Mapping[int, SimulatedDevice]) -> list[dict[str, Any]]:
    """The datalogger's devices for the meters of one bus: logged every minute."""
    devices = []
    for unit_id, device in sorted(meters.items()):
        meter = device.meter
        model = meter.name if meter.kind is None else KIND_TEMPLATES[meter.kind]
        usage, zone = DEMO_USES.get(meter.label, ("other", ""))
        devices.append({"name": device.label[:20], "model": model, "bus": bus,
                        "unit_id": unit_id, "usage": usage, "zone": zone,
                        "period_min": DEMO_PERIOD_MIN})  # fmt: skip
    return devices


def to_toml(settings: dict[str, Any]) -> str:
    """Enough TOML for the demo's flat tables (strings, numbers, arrays of tables)."""

    def value(item: object) -> str:
        return (
            f'"{item}"'
            if isinstance(item, str)
            else str(item).lower()
            if isinstance(item, bool)
            else str(item)
        )

    lines = ["# Written by `panelhub demo`: the configuration it runs.", ""]
    lines += [f"data_dir = {value(settings['data_dir'])}", "", "[web]"]
    lines += [f"{key} = {value(item)}" for key, item in settings["web"].items()]
    lines += ["", "[gateway]"]
    lines += [f"{key} = {value(item)}" for key, item in settings["gateway"].items()]
    for table in ("listeners", "buses", "routes", "devices"):
        for entry in settings[table]:
            lines += ["", f"[[{table}]]"] + [
                f"{key} = {value(item)}" for key, item in entry.items()
            ]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only; the data directory is 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)


def summary(handle: SimulatorHandle, settings: Settings, config_path: Path) -> list[str]:
    listener = settings.listeners[0]
    where = f"-p {listener.port} {listener.host}"
    lines = ["PanelHub demo", f"  gateway (Modbus TCP): {listener.host}:{listener.port}",
             f"  web pages: https://{settings.web.host}:{settings.web.port}/ (self-signed "
             "certificate: your browser asks you to accept it once)",
             f"  configuration: {config_path}", "  simulated devices:"]  # fmt: skip
    lines += [f"    {line}" for line in handle.describe()]
    lines += ["  through the gateway:", "    units 1-3: the RTU meters, transparently"]
    lines += [
        f"    unit {route.unit_id}: {route.bus} unit {route.target_unit_id}"
        for route in settings.routes
    ]
    lines += ["    unit 255: the gateway itself (identity, health, clock)", "  try:",
              f"    mbpoll -m tcp -a 1 -r 3060 -c 1 -t 4:float -B -1 {where}    (total kW)",
              f"    mbpoll -m tcp -a 100 -r 3028 -c 3 -t 4:float -B -1 {where}  (V L-N)",
              f"    mbpoll -m tcp -a 255 -r 159 -c 1 -1 {where}  (gateway health)",
              "  Ctrl-C stops everything."]  # fmt: skip
    return lines


async def run_demo(
    *, modbus_port: int, data_dir: Path, sim_base_port: int, web_port: int = DEFAULT_WEB_PORT
) -> None:
    """Start the simulator and the gateway; run until SIGINT/SIGTERM."""
    async with run_simulator(default_demo_spec(base_port=sim_base_port)) as handle:
        raw = demo_settings(handle, modbus_port=modbus_port, web_port=web_port, data_dir=data_dir)
        settings = parse_settings(raw)
        config_path = data_dir / "demo.toml"
        write_private(config_path, to_toml(raw))

        def announce(_: service.Gateway) -> None:
            print("\n".join(summary(handle, settings, config_path)), flush=True)

        await service.run(settings, config_path=config_path, on_started=announce)
    await asyncio.sleep(0)  # let closed transports finish their callbacks
