"""The configuration schema: frozen pydantic models, unknown keys refused, units in field names.

Each component receives its own sub-model (``GatewayConfig``, ``ListenerConfig``, a bus model),
never the whole tree. Cross-field checks raise; nothing here silently corrects a value.
"""

from __future__ import annotations

import ipaddress
import zoneinfo
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Modbus serial addresses a device may use (Modbus over Serial Line v1.02 §2.2); 0 is broadcast.
UnitId = Annotated[int, Field(ge=1, le=247)]
#: Any unit ID an upstream Modbus TCP request may carry (MBAP unit identifier is one byte).
AnyUnitId = Annotated[int, Field(ge=0, le=255)]
Port = Annotated[int, Field(ge=1, le=65535)]
#: A port to listen on; 0 lets the system pick a free one (the log says which).
ListenPort = Annotated[int, Field(ge=0, le=65535)]
Name = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
#: A host name or address. Never empty: asyncio reads an empty listener host as "every
#: interface", which must be asked for explicitly ("0.0.0.0" or "::").
Host = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^\S+$")]

#: The reference device's upstream request time-to-live range (its "message timeout"), in ms.
REQUEST_TTL_MIN_MS: Final = 1_000
REQUEST_TTL_MAX_MS: Final = 320_000
#: The gateway answers for itself on this unit ID, as the reference device does.
LOCAL_UNIT_ID: Final = 255
#: Highest address on a serial line; 248-255 are reserved (Modbus over Serial Line v1.02 §2.2).
MAX_SERIAL_UNIT_ID: Final = 247
#: Standard serial line speeds the gateway offers (FEATURES.md: 1200-115200 baud).
BAUD_RATES: Final = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
#: Every public function code of the Modbus Application Protocol v1.1b3 §5.1.
PUBLIC_FUNCTION_CODES: Final = (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43)


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TCPBusConfig(FrozenModel):
    """A Modbus TCP device (or a TCP gateway in front of several) reached downstream."""

    kind: Literal["tcp"]
    name: Name
    host: Host
    port: Port = 502
    connect_timeout_s: float = Field(3.0, gt=0, le=60)
    response_timeout_s: float = Field(1.0, gt=0, le=300)
    retries: int = Field(0, ge=0, le=5)
    #: Requests kept in flight at once. 1 unless the device is known to handle overlapping
    #: requests: pymodbus's own server, for one, silently drops them.
    max_in_flight: int = Field(1, ge=1, le=16)
    queue_size: int = Field(64, ge=1, le=4096)


class RTUBusConfig(FrozenModel):
    """An RS-485 serial line with Modbus RTU servers on it; this gateway is the line's client."""

    kind: Literal["rtu"]
    name: Name
    device: Path
    baud_rate: int = 19200
    parity: Literal["N", "E", "O"] = "E"
    stop_bits: Literal[1, 2] = 1
    response_timeout_s: float = Field(1.0, gt=0, le=300)
    retries: int = Field(0, ge=0, le=5)
    #: Silence kept after a broadcast so every server can act on it (Modbus over Serial
    #: Line v1.02 §2.4.1 "turnaround delay", typically 100 to 200 ms).
    turnaround_delay_s: float = Field(0.1, ge=0, le=5)
    #: Extra silence between two transactions, for slow devices; 0 keeps only t3.5.
    inter_frame_delay_s: float = Field(0.0, ge=0, le=5)
    #: Silence that separates frames. Unset: 3.5 character times from the baud rate (1.75 ms
    #: above 19,200 baud), as the spec requires on a real RS-485 line. Set it to 0 only where
    #: there is no line: a pseudo-terminal, or a serial server that frames by itself.
    frame_gap_s: float | None = Field(None, ge=0, le=1)
    queue_size: int = Field(64, ge=1, le=4096)

    @field_validator("baud_rate")
    @classmethod
    def _standard_baud_rate(cls, value: int) -> int:
        if value not in BAUD_RATES:
            raise ValueError(f"must be one of {', '.join(map(str, BAUD_RATES))}")
        return value


BusConfig = Annotated[TCPBusConfig | RTUBusConfig, Field(discriminator="kind")]


class RouteConfig(FrozenModel):
    """Requests for ``unit_id`` go to ``bus``, addressed there as ``target_unit_id``."""

    unit_id: Annotated[int, Field(ge=1, le=254)]
    bus: Name
    target_unit_id: AnyUnitId | None = None


class ListenerConfig(FrozenModel):
    """One upstream Modbus TCP server, on one address, with its own access rules."""

    name: Name
    host: Host = "127.0.0.1"
    port: ListenPort = 502
    enable: bool = True
    #: Client networks allowed to connect. Empty refuses everyone: name the SCADA hosts.
    allow_clients: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    is_read_only: bool = False
    allow_function_codes: tuple[Annotated[int, Field(ge=1, le=127)], ...] = PUBLIC_FUNCTION_CODES
    #: Unit IDs clients may address; empty means every unit ID.
    allow_unit_ids: tuple[AnyUnitId, ...] = ()
    max_connections: int = Field(64, ge=1, le=1024)
    max_connections_per_client: int = Field(16, ge=1, le=1024)
    idle_timeout_s: float = Field(300.0, gt=0, le=86_400)

    @field_validator("allow_clients")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network") from exc
        return value

    @model_validator(mode="after")
    def _per_client_within_total(self) -> ListenerConfig:
        if self.max_connections_per_client > self.max_connections:
            raise ValueError("max_connections_per_client must not exceed max_connections")
        return self


class IdentityConfig(FrozenModel):
    """What the gateway says about itself on unit 255 (FC 43/14 and its register table)."""

    vendor_name: str = Field("PanelHub project", max_length=32)
    product_code: str = Field("PANELHUB", max_length=32)
    product_name: str = Field("PanelHub panel server", max_length=32)
    model_name: str = Field("PanelHub", max_length=32)
    vendor_url: str = Field("https://panelhub.invalid/", max_length=32)
    serial_number: str = Field("000000000000", max_length=12)
    user_application_name: str = Field("", max_length=32)


class GatewayConfig(FrozenModel):
    #: Longest an upstream request may wait, queue included; an older one is dropped unanswered.
    request_ttl_ms: int = Field(6_000, ge=REQUEST_TTL_MIN_MS, le=REQUEST_TTL_MAX_MS)
    #: Bus whose servers are reached transparently: unit X on the upstream side is RTU address
    #: X on this line (the reference device's out-of-box behaviour). None: only explicit routes.
    default_bus: Name | None = None
    allow_set_clock: bool = False
    identity: IdentityConfig = IdentityConfig()


class WebConfig(FrozenModel):
    """The HTTPS pages and API."""

    enable: bool = True
    #: Address the pages are served on; its interface is where the web users are.
    host: Host = "127.0.0.1"
    port: ListenPort = 443
    #: Names the certificate carries besides this machine's host name, localhost and ``host``
    #: (the DNS name users type to reach the panel).
    certificate_names: tuple[Annotated[str, Field(min_length=1, max_length=253)], ...] = ()
    #: Shown on the login page before anyone logs in (IEC 62443-3-3 CR 1.12 "system use
    #: notification"); empty shows none.
    login_banner: str = Field("", max_length=2_000)
    #: "guide": 8-50 characters with three character classes (the vendor guide's rule);
    #: "nist": at least 15 characters, no composition rule.
    password_policy: Literal["guide", "nist"] = "guide"  # noqa: S105 - a rule name
    session_idle_timeout_s: int = Field(900, ge=60, le=86_400)
    session_absolute_timeout_s: int = Field(43_200, ge=300, le=604_800)


class Usage(StrEnum):
    """What a device's consumption is for (the reference device's usage list, §1.5).

    ``MAIN`` and ``SUB_MAIN`` measure other devices' consumption again: aggregates by usage or
    zone leave them out, so nothing is counted twice.
    """

    MAIN = "main"  # main / incomer
    SUB_MAIN = "sub-main"  # sub-main / head of group
    HEATING = "heating"
    COOLING = "cooling"
    HVAC = "hvac"
    VENTILATION = "ventilation"
    LIGHTING = "lighting"
    OFFICE_EQUIPMENT = "office-equipment"
    COOKING = "cooking"
    REFRIGERATION = "refrigeration"
    ELEVATORS = "elevators"
    COMPUTERS = "computers"
    RENEWABLE = "renewable"
    GENSET = "genset"
    COMPRESSED_AIR = "compressed-air"
    VAPOR = "vapor"
    MACHINE = "machine"
    PROCESS = "process"
    PUMPS = "pumps"
    OTHER = "other"


class Commodity(StrEnum):
    ELECTRICITY = "electricity"
    GAS = "gas"
    FUEL_OIL = "fuel-oil"
    AIR = "air"
    STEAM = "steam"
    WATER = "water"
    HEAT = "heat"
    OTHER = "other"


#: Logging periods offered, in minutes (FEATURES.md "Datalogger").
LOGGING_PERIODS_MIN: Final = (1, 5, 10, 15, 30, 60)
LoggingPeriod = Literal[1, 5, 10, 15, 30, 60]
#: A device's name as the pages, trends and CSV files show it: the reference device's limit.
DEVICE_NAME_MAX: Final = 20
#: A measurement's key in its device template.
MeasurementKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
#: A device template's id.
ModelId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]


class MeasurementSamplingConfig(FrozenModel):
    """A measurement whose logging differs from its device's: off, or another period."""

    key: MeasurementKey
    enable: bool = True
    period_min: LoggingPeriod | None = None  # None: the device's period


class MeterReplacementConfig(FrozenModel):
    """A meter swapped for another: its counter restarts, and consumption must not jump.

    ``old_final`` is the old meter's last reading (None: the last one logged), ``new_initial``
    the new meter's first; both in the counter's unit as the template gives it.
    """

    key: MeasurementKey
    at: datetime
    old_final: float | None = None
    new_initial: float = 0.0

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-03-01T10:00:00+01:00")
        return value


class DeviceConfig(FrozenModel):
    """A device the datalogger polls: where it is, what model it is, and what it measures for."""

    name: str = Field(min_length=1, max_length=DEVICE_NAME_MAX)
    #: The circuit label printed on the panel, e.g. "Q12".
    label: str = Field("", max_length=16)
    model: ModelId
    #: The downstream bus (TCP device or serial line) and the device's address on it.
    bus: Name
    unit_id: Annotated[int, Field(ge=1, le=255)] = 1
    enable: bool = True
    usage: Usage = Usage.OTHER
    zone: str = Field("", max_length=32)
    commodity: Commodity = Commodity.ELECTRICITY
    period_min: LoggingPeriod = 5
    #: How often the monitoring page's live values are read while someone watches them.
    live_period_s: int = Field(10, ge=1, le=3_600)
    measurements: tuple[MeasurementSamplingConfig, ...] = ()
    #: The template's limits, for a device (or a gateway in front of it) that allows less.
    max_registers_per_request: int | None = Field(None, ge=1, le=125)
    max_gap: int | None = Field(None, ge=0, le=124)
    replacements: tuple[MeterReplacementConfig, ...] = ()

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        # The name goes into file names (CSV publication) and page titles.
        if value != value.strip():
            raise ValueError("must not start or end with a space")
        if not value.isprintable() or any(char in value for char in "/\\"):
            raise ValueError("must be printable, without / or \\")
        return value

    @model_validator(mode="after")
    def _unique_keys(self) -> DeviceConfig:
        _unique(f"devices[{self.name}].measurements", [m.key for m in self.measurements])
        return self


class DataloggerConfig(FrozenModel):
    enable: bool = True
    #: Raw samples older than this are deleted; rollups (5 min, hour, day) stay longer.
    raw_retention_days: int = Field(400, ge=1, le=3_660)
    rollup_retention_days: int = Field(3_660, ge=30, le=36_600)

    @model_validator(mode="after")
    def _rollups_outlive_raw(self) -> DataloggerConfig:
        if self.rollup_retention_days < self.raw_retention_days:
            raise ValueError("rollup_retention_days must not be shorter than raw_retention_days")
        return self


class Settings(FrozenModel):
    #: Accounts, audit log, certificates: kept 0700, owner only.
    data_dir: Path = Path("/var/lib/panelhub")
    web: WebConfig = WebConfig()
    gateway: GatewayConfig = GatewayConfig()
    listeners: tuple[ListenerConfig, ...] = ()
    buses: tuple[BusConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    devices: tuple[DeviceConfig, ...] = ()
    datalogger: DataloggerConfig = DataloggerConfig()
    #: IANA time zone of the installation: local days, the pages' clock, CSV local times.
    timezone: str = "UTC"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _references(self) -> Settings:
        _unique("listeners", [listener.name for listener in self.listeners])
        _unique("buses", [bus.name for bus in self.buses])
        _unique("routes", [str(route.unit_id) for route in self.routes])
        bus_names = {bus.name for bus in self.buses}
        default = self.gateway.default_bus
        if default is not None and default not in bus_names:
            raise ValueError(f"gateway.default_bus names {default!r}, which is not in buses")
        serial_buses = {bus.name for bus in self.buses if isinstance(bus, RTUBusConfig)}
        for index, route in enumerate(self.routes):
            if route.bus not in bus_names:
                raise ValueError(f"routes[{index}].bus names {route.bus!r}, which is not in buses")
            target = route.unit_id if route.target_unit_id is None else route.target_unit_id
            if route.bus in serial_buses and target > MAX_SERIAL_UNIT_ID:
                raise ValueError(
                    f"routes[{index}] reaches address {target} on serial line {route.bus!r}, "
                    f"which has addresses 0 to {MAX_SERIAL_UNIT_ID} only"
                )
        endpoints = [f"{lst.host}:{lst.port}" for lst in self.listeners if lst.port]  # 0: any
        _unique("listener addresses", endpoints)
        self._check_devices(bus_names, serial_buses)
        return self

    def _check_devices(self, bus_names: set[str], serial_buses: set[str]) -> None:
        _unique("devices", [device.name.casefold() for device in self.devices])
        _unique("device addresses", [f"{d.bus} unit {d.unit_id}" for d in self.devices])
        for index, device in enumerate(self.devices):
            if device.bus not in bus_names:
                raise ValueError(
                    f"devices[{index}].bus names {device.bus!r}, which is not in buses"
                )
            if device.bus in serial_buses and device.unit_id > MAX_SERIAL_UNIT_ID:
                raise ValueError(
                    f"devices[{index}] has address {device.unit_id} on serial line "
                    f"{device.bus!r}, which has addresses 1 to {MAX_SERIAL_UNIT_ID} only"
                )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known IANA time zone") from exc
        return value


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: {name!r} appears twice")
        seen.add(name)
