"""Configuration models: valid configurations, every validator, frozen and closed models."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from panelhub.config import models
from panelhub.config.models import (
    BAUD_RATES,
    PUBLIC_FUNCTION_CODES,
    BusConfig,
    GatewayConfig,
    IdentityConfig,
    ListenerConfig,
    RouteConfig,
    RTUBusConfig,
    Settings,
    TCPBusConfig,
)

EXAMPLE_CONFIG = Path(__file__).parents[2] / "packaging" / "panelhub.toml"

RTU_BUS: dict[str, Any] = {"kind": "rtu", "name": "rs485", "device": "/dev/ttyUSB0"}
TCP_BUS: dict[str, Any] = {"kind": "tcp", "name": "meter", "host": "198.51.100.20"}

FULL: dict[str, Any] = {
    "log_level": "DEBUG",
    "gateway": {
        "request_ttl_ms": 10_000,
        "default_bus": "rs485",
        "allow_set_clock": True,
        "identity": {"vendor_name": "ACME", "serial_number": "123456789012"},
    },
    "listeners": [
        {
            "name": "eth1",
            "host": "192.0.2.10",
            "port": 502,
            "allow_clients": ["192.0.2.0/28", "2001:db8::/32", "203.0.113.7"],
            "is_read_only": True,
            "allow_function_codes": [3, 4, 43],
            "allow_unit_ids": [0, 1, 255],
            "max_connections": 8,
            "max_connections_per_client": 8,
            "idle_timeout_s": 60,
        },
        {"name": "local", "port": 1502, "enable": False},
    ],
    "buses": [
        {
            **RTU_BUS,
            "baud_rate": 9600,
            "parity": "N",
            "stop_bits": 2,
            "response_timeout_s": 0.5,
            "retries": 5,
            "turnaround_delay_s": 0.2,
            "inter_frame_delay_s": 0.01,
            "queue_size": 16,
        },
        {
            **TCP_BUS,
            "port": 5020,
            "connect_timeout_s": 1,
            "response_timeout_s": 2,
            "retries": 1,
            "max_in_flight": 4,
            "queue_size": 4096,
        },
    ],
    "routes": [
        {"unit_id": 100, "bus": "meter", "target_unit_id": 1},
        {"unit_id": 247, "bus": "rs485"},
    ],
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def _error_locations(exc: ValidationError) -> list[tuple[int | str, ...]]:
    return [tuple(error["loc"]) for error in exc.errors()]


# --- valid configurations ------------------------------------------------------------------------


def test_minimal_config_is_empty():
    settings = Settings.model_validate({})
    assert settings.listeners == ()
    assert settings.buses == ()
    assert settings.routes == ()
    assert settings.log_level == "INFO"
    assert settings.gateway.request_ttl_ms == 6_000
    assert settings.gateway.default_bus is None
    assert settings.gateway.allow_set_clock is False


def test_full_config():
    settings = Settings.model_validate(FULL)
    rtu_bus, tcp_bus = settings.buses
    assert isinstance(rtu_bus, RTUBusConfig)
    assert rtu_bus.device == Path("/dev/ttyUSB0")
    assert (rtu_bus.baud_rate, rtu_bus.parity, rtu_bus.stop_bits) == (9600, "N", 2)
    assert isinstance(tcp_bus, TCPBusConfig)
    assert (tcp_bus.port, tcp_bus.max_in_flight) == (5020, 4)
    listener, local = settings.listeners
    assert listener.allow_unit_ids == (0, 1, 255)
    assert listener.is_read_only is True
    assert local.host == "127.0.0.1"
    assert local.enable is False
    assert settings.routes[0].target_unit_id == 1
    assert settings.routes[1].target_unit_id is None
    assert settings.gateway.identity.vendor_name == "ACME"
    assert settings.gateway.identity.product_code == "PANELHUB"


def test_full_config_round_trips_through_json():
    settings = Settings.model_validate(FULL)
    assert Settings.model_validate_json(settings.model_dump_json()) == settings


def test_shipped_example_configuration_is_valid():
    settings = Settings.model_validate(tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8")))
    assert settings.gateway.default_bus in {bus.name for bus in settings.buses}


def test_listener_defaults_are_secure():
    listener = ListenerConfig(name="eth1")
    assert listener.host == "127.0.0.1"  # loopback until configured otherwise
    assert listener.allow_clients == ("127.0.0.0/8", "::1/128")
    assert listener.allow_function_codes == PUBLIC_FUNCTION_CODES
    assert listener.allow_unit_ids == ()


def test_rtu_defaults():
    bus = RTUBusConfig.model_validate(RTU_BUS)
    assert (bus.baud_rate, bus.parity, bus.stop_bits) == (19200, "E", 1)  # Serial Line §2.5.1
    assert bus.frame_gap_s is None
    assert bus.turnaround_delay_s == 0.1


@pytest.mark.parametrize(
    "model",
    [
        Settings,
        GatewayConfig,
        IdentityConfig,
        ListenerConfig,
        RouteConfig,
        TCPBusConfig,
        RTUBusConfig,
    ],
)
def test_defaults_pass_their_own_validation(model):
    # pydantic does not validate defaults: a default outside its own constraint would slip by.
    required = {
        ListenerConfig: {"name": "x"},
        RouteConfig: {"unit_id": 1, "bus": "x"},
        TCPBusConfig: TCP_BUS,
        RTUBusConfig: RTU_BUS,
    }.get(model, {})
    instance = model.model_validate(required)
    assert model.model_validate(instance.model_dump()) == instance


def test_public_function_codes_are_the_spec_list():
    assert PUBLIC_FUNCTION_CODES == (
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        11,
        12,
        15,
        16,
        17,
        20,
        21,
        22,
        23,
        24,
        43,
    )


# --- field validators ----------------------------------------------------------------------------


@pytest.mark.parametrize("baud_rate", BAUD_RATES)
def test_standard_baud_rates_accepted(baud_rate):
    assert RTUBusConfig.model_validate(_with(RTU_BUS, baud_rate=baud_rate)).baud_rate == baud_rate


@pytest.mark.parametrize("baud_rate", [0, 300, 14400, 19201, 230400, -9600])
def test_bad_baud_rate_refused(baud_rate):
    with pytest.raises(ValidationError, match="must be one of 1200, 2400") as info:
        RTUBusConfig.model_validate(_with(RTU_BUS, baud_rate=baud_rate))
    assert _error_locations(info.value) == [("baud_rate",)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("parity", "M"), ("stop_bits", 3), ("stop_bits", 1.5), ("frame_gap_s", -0.001)],
)
def test_bad_serial_settings_refused(field, value):
    with pytest.raises(ValidationError):
        RTUBusConfig.model_validate(_with(RTU_BUS, **{field: value}))


@pytest.mark.parametrize(
    ("port", "is_valid"), [(0, False), (1, True), (65535, True), (65536, False), (-1, False)]
)
def test_bus_port_range(port, is_valid):
    if is_valid:
        assert TCPBusConfig.model_validate(_with(TCP_BUS, port=port)).port == port
    else:
        with pytest.raises(ValidationError) as info:
            TCPBusConfig.model_validate(_with(TCP_BUS, port=port))
        assert _error_locations(info.value) == [("port",)]


@pytest.mark.parametrize(
    ("port", "is_valid"), [(0, True), (65535, True), (65536, False), (-1, False)]
)
def test_listener_port_range(port, is_valid):
    # 0 asks the system for a free port (tests, and a log line says which).
    if is_valid:
        assert ListenerConfig(name="eth1", port=port).port == port
    else:
        with pytest.raises(ValidationError):
            ListenerConfig(name="eth1", port=port)


@pytest.mark.parametrize("name", ["", "a" * 33, "has space", "slash/", "ümlaut", "semi;colon"])
def test_bad_names_refused(name):
    with pytest.raises(ValidationError):
        TCPBusConfig.model_validate(_with(TCP_BUS, name=name))


@pytest.mark.parametrize("name", ["a", "a" * 32, "rs485-1", "main_meter.2", "A-Z"])
def test_good_names_accepted(name):
    assert TCPBusConfig.model_validate(_with(TCP_BUS, name=name)).name == name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connect_timeout_s", 0),
        ("connect_timeout_s", 61),
        ("response_timeout_s", 0),
        ("response_timeout_s", 301),
        ("retries", -1),
        ("retries", 6),
        ("max_in_flight", 0),
        ("max_in_flight", 17),
        ("queue_size", 0),
        ("queue_size", 4097),
    ],
)
def test_tcp_bus_ranges(field, value):
    with pytest.raises(ValidationError) as info:
        TCPBusConfig.model_validate(_with(TCP_BUS, **{field: value}))
    assert _error_locations(info.value) == [(field,)]


@pytest.mark.parametrize(
    "networks", [["not-a-network"], ["192.0.2.0/33"], ["127.0.0.1", "300.1.1.1"], ["::1/129"]]
)
def test_bad_allow_clients_refused(networks):
    with pytest.raises(ValidationError, match="is not an IP address or network") as info:
        ListenerConfig(name="eth1", allow_clients=networks)
    assert _error_locations(info.value) == [("allow_clients",)]


def test_allow_clients_accepts_hosts_networks_and_empty():
    assert ListenerConfig(name="a", allow_clients=()).allow_clients == ()
    networks = ("10.1.2.3", "10.0.0.1/8", "2001:db8::1", "fe80::/10")  # host bits allowed
    assert ListenerConfig(name="a", allow_clients=networks).allow_clients == networks


@pytest.mark.parametrize("code", [0, 128, 255])
def test_allow_function_codes_range(code):
    with pytest.raises(ValidationError):
        ListenerConfig(name="a", allow_function_codes=(3, code))


@pytest.mark.parametrize("unit_id", [-1, 256])
def test_allow_unit_ids_range(unit_id):
    with pytest.raises(ValidationError):
        ListenerConfig(name="a", allow_unit_ids=(unit_id,))


def test_per_client_connections_may_equal_total():
    listener = ListenerConfig(name="a", max_connections=4, max_connections_per_client=4)
    assert listener.max_connections_per_client == 4


def test_per_client_connections_over_total_refused():
    with pytest.raises(ValidationError, match="must not exceed max_connections"):
        ListenerConfig(name="a", max_connections=4, max_connections_per_client=5)


def test_per_client_over_default_total_refused():
    with pytest.raises(ValidationError, match="must not exceed"):
        ListenerConfig(name="a", max_connections_per_client=65)


@pytest.mark.parametrize(
    ("ttl_ms", "is_valid"),
    [(999, False), (1000, True), (320_000, True), (320_001, False), (0, False)],
)
def test_request_ttl_range(ttl_ms, is_valid):
    assert (models.REQUEST_TTL_MIN_MS, models.REQUEST_TTL_MAX_MS) == (1_000, 320_000)
    if is_valid:
        assert GatewayConfig(request_ttl_ms=ttl_ms).request_ttl_ms == ttl_ms
    else:
        with pytest.raises(ValidationError) as info:
            GatewayConfig(request_ttl_ms=ttl_ms)
        assert _error_locations(info.value) == [("request_ttl_ms",)]


@pytest.mark.parametrize(
    ("unit_id", "is_valid"), [(0, False), (1, True), (254, True), (255, False)]
)
def test_route_unit_id_range(unit_id, is_valid):
    # 0 is broadcast and 255 is the gateway itself: neither can be routed.
    if is_valid:
        assert RouteConfig(unit_id=unit_id, bus="x").unit_id == unit_id
    else:
        with pytest.raises(ValidationError):
            RouteConfig(unit_id=unit_id, bus="x")


@pytest.mark.parametrize("target", [-1, 256])
def test_route_target_unit_id_range(target):
    with pytest.raises(ValidationError):
        RouteConfig(unit_id=1, bus="x", target_unit_id=target)


def test_identity_lengths():
    with pytest.raises(ValidationError):
        IdentityConfig(serial_number="1234567890123")
    with pytest.raises(ValidationError):
        IdentityConfig(vendor_name="x" * 33)


def test_log_level_choices():
    with pytest.raises(ValidationError):
        Settings.model_validate({"log_level": "TRACE"})


# --- discriminated bus union ---------------------------------------------------------------------


@pytest.mark.parametrize(("data", "model"), [(TCP_BUS, TCPBusConfig), (RTU_BUS, RTUBusConfig)])
def test_discriminator_picks_the_bus_model(data, model):
    assert type(TypeAdapter(BusConfig).validate_python(data)) is model
    assert type(Settings.model_validate({"buses": [data]}).buses[0]) is model


@pytest.mark.parametrize("kind", ["ascii", "TCP", "", None])
def test_bad_bus_kind_refused(kind):
    with pytest.raises(ValidationError, match=r"union_tag_invalid|tag") as info:
        TypeAdapter(BusConfig).validate_python(_with(TCP_BUS, kind=kind))
    assert len(info.value.errors()) == 1


def test_missing_bus_kind_refused():
    data = {key: value for key, value in TCP_BUS.items() if key != "kind"}
    with pytest.raises(ValidationError, match=r"union_tag_not_found|discriminator"):
        TypeAdapter(BusConfig).validate_python(data)


def test_variant_fields_do_not_mix():
    # An RTU field on a TCP bus is an unknown key, not silently ignored.
    with pytest.raises(ValidationError, match="baud_rate") as info:
        Settings.model_validate({"buses": [_with(TCP_BUS, baud_rate=9600)]})
    assert _error_locations(info.value) == [("buses", 0, "tcp", "baud_rate")]


# --- unknown keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "location"),
    [
        ({"gatway": {}}, ("gatway",)),
        ({"gateway": {"request_ttl": 5000}}, ("gateway", "request_ttl")),
        ({"gateway": {"identity": {"vendor": "x"}}}, ("gateway", "identity", "vendor")),
        ({"listeners": [{"name": "a", "timeout_s": 1}]}, ("listeners", 0, "timeout_s")),
        ({"buses": [_with(RTU_BUS, slave_id=1)]}, ("buses", 0, "rtu", "slave_id")),
        ({"routes": [{"unit_id": 1, "bus": "x", "slave": 2}]}, ("routes", 0, "slave")),
    ],
)
def test_unknown_keys_refused(data, location):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted") as info:
        Settings.model_validate(data)
    assert location in _error_locations(info.value)


# --- cross-field checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"listeners": [{"name": "a", "port": 502}, {"name": "a", "port": 503}]},
            "listeners: 'a' appears twice",
        ),
        ({"buses": [TCP_BUS, _with(RTU_BUS, name="meter")]}, "buses: 'meter' appears twice"),
        (
            {
                "buses": [TCP_BUS],
                "routes": [{"unit_id": 7, "bus": "meter"}, {"unit_id": 7, "bus": "meter"}],
            },
            "routes: '7' appears twice",
        ),
        (
            {"listeners": [{"name": "a"}, {"name": "b"}]},
            "listener addresses: '127.0.0.1:502' appears twice",
        ),
        ({"routes": [{"unit_id": 7, "bus": "nowhere"}]}, r"routes\[0\].bus names 'nowhere'"),
        (
            {
                "buses": [TCP_BUS],
                "routes": [{"unit_id": 1, "bus": "meter"}, {"unit_id": 2, "bus": "metre"}],
            },
            r"routes\[1\].bus names 'metre'",
        ),
        ({"gateway": {"default_bus": "rs485"}}, "gateway.default_bus names 'rs485'"),
        (
            {"buses": [TCP_BUS], "gateway": {"default_bus": "rs485"}},
            "gateway.default_bus names 'rs485', which is not in buses",
        ),
    ],
)
def test_cross_field_checks_raise(data, message):
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate(data)


def test_same_port_on_different_hosts_is_fine():
    settings = Settings.model_validate(
        {"listeners": [{"name": "a", "host": "192.0.2.1"}, {"name": "b", "host": "192.0.2.2"}]}
    )
    assert len(settings.listeners) == 2


def test_a_bus_named_in_default_and_routes():
    settings = Settings.model_validate(
        {
            "buses": [RTU_BUS],
            "gateway": {"default_bus": "rs485"},
            "routes": [{"unit_id": 3, "bus": "rs485", "target_unit_id": 4}],
        }
    )
    assert settings.gateway.default_bus == "rs485"


def test_checks_never_correct_values():
    # Nothing is dropped or adjusted: what validates is exactly what was written.
    settings = Settings.model_validate(FULL)
    dumped = settings.model_dump(mode="json", exclude_defaults=True)
    assert dumped["routes"] == [*FULL["routes"][:1], {"unit_id": 247, "bus": "rs485"}]
    assert len(dumped["listeners"]) == len(FULL["listeners"])
    assert dumped["gateway"]["request_ttl_ms"] == 10_000


# --- frozen --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "field", "value"),
    [
        (Settings.model_validate(FULL), "log_level", "ERROR"),
        (GatewayConfig(), "request_ttl_ms", 2000),
        (IdentityConfig(), "vendor_name", "x"),
        (ListenerConfig(name="a"), "port", 1502),
        (RouteConfig(unit_id=1, bus="x"), "bus", "y"),
        (TCPBusConfig.model_validate(TCP_BUS), "port", 503),
        (RTUBusConfig.model_validate(RTU_BUS), "baud_rate", 9600),
    ],
)
def test_models_are_frozen(instance: BaseModel, field, value):
    with pytest.raises(ValidationError, match="frozen"):
        setattr(instance, field, value)


def test_collections_are_immutable_tuples():
    settings = Settings.model_validate(FULL)
    assert isinstance(settings.listeners, tuple)
    assert isinstance(settings.buses, tuple)
    assert isinstance(settings.routes, tuple)
    assert isinstance(settings.listeners[0].allow_clients, tuple)


def test_frozen_models_are_hashable():
    assert hash(RouteConfig(unit_id=1, bus="x")) == hash(RouteConfig(unit_id=1, bus="x"))


@pytest.mark.parametrize("host", ["", " ", "192.0.2.1 "])
def test_blank_or_padded_hosts_refused(host):
    # An empty listener host makes asyncio listen on every interface: never by accident.
    with pytest.raises(ValidationError):
        ListenerConfig(name="up", host=host)
    with pytest.raises(ValidationError):
        TCPBusConfig(kind="tcp", name="meter", host=host)


@pytest.mark.parametrize(
    "route",
    [
        {"unit_id": 250},
        {"unit_id": 7, "target_unit_id": 248},
        {"unit_id": 7, "target_unit_id": 255},
    ],
)
def test_route_to_an_address_a_serial_line_cannot_carry_refused(route):
    # Modbus over Serial Line v1.02 §2.2: addresses 248-255 are reserved on the line.
    with pytest.raises(ValidationError, match=r"routes\[0\]"):
        Settings.model_validate({"buses": [RTU_BUS], "routes": [{**route, "bus": "rs485"}]})


def test_route_to_unit_255_of_a_tcp_device_accepted():
    # Modbus TCP devices commonly answer on unit 255.
    settings = Settings.model_validate(
        {"buses": [TCP_BUS], "routes": [{"unit_id": 250, "bus": "meter", "target_unit_id": 255}]}
    )
    assert settings.routes[0].target_unit_id == 255


# --- devices and the datalogger ------------------------------------------------------------------

SIM_DEVICE: dict[str, Any] = {"name": "Main incomer", "model": "panelhub-sim-pm3", "bus": "meter"}


def _settings_with_devices(*devices: dict[str, Any], **extra: Any) -> Settings:
    return Settings.model_validate({"buses": [RTU_BUS, TCP_BUS], "devices": list(devices), **extra})


def test_device_defaults_log_every_5_minutes_as_other_electricity():
    (device,) = _settings_with_devices(SIM_DEVICE).devices
    assert (device.unit_id, device.period_min, device.enable) == (1, 5, True)
    assert (device.usage, device.commodity) == (models.Usage.OTHER, models.Commodity.ELECTRICITY)
    assert device.measurements == ()


def test_device_with_every_setting():
    settings = _settings_with_devices(
        {
            **SIM_DEVICE,
            "label": "Q1",
            "unit_id": 3,
            "usage": "main",
            "zone": "Ground floor",
            "commodity": "electricity",
            "period_min": 15,
            "live_period_s": 2,
            "measurements": [
                {"key": "frequency", "enable": False},
                {"key": "active_energy_import", "period_min": 1},
            ],
            "max_registers_per_request": 40,
            "max_gap": 4,
            "replacements": [
                {"key": "active_energy_import", "at": "2026-03-01T10:00:00+01:00", "new_initial": 2}
            ],
        },
        timezone="Europe/Paris",
        datalogger={"raw_retention_days": 30, "rollup_retention_days": 3650},
    )
    (device,) = settings.devices
    assert device.usage is models.Usage.MAIN
    assert device.measurements[1].period_min == 1
    assert device.replacements[0].old_final is None
    assert settings.timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({**SIM_DEVICE, "name": " Padded"}, "must not start or end with a space"),
        ({**SIM_DEVICE, "name": "a/b"}, "must be printable"),
        ({**SIM_DEVICE, "name": "tab\there"}, "must be printable"),
        ({**SIM_DEVICE, "name": "x" * 21}, "at most 20 characters"),
        ({**SIM_DEVICE, "period_min": 7}, "period_min"),
        ({**SIM_DEVICE, "usage": "toaster"}, "usage"),
        ({**SIM_DEVICE, "model": "Bad Model"}, "model"),
        ({**SIM_DEVICE, "bus": "nowhere"}, "devices[0].bus names 'nowhere'"),
        ({**SIM_DEVICE, "bus": "rs485", "unit_id": 248}, "serial line 'rs485'"),
        (
            {**SIM_DEVICE, "measurements": [{"key": "frequency"}, {"key": "frequency"}]},
            "'frequency' appears twice",
        ),
        (
            {**SIM_DEVICE, "replacements": [{"key": "e", "at": "2026-03-01T10:00:00"}]},
            "needs a UTC offset",
        ),
    ],
)
def test_bad_devices_refused_with_the_reason(device, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        _settings_with_devices(device)


def test_two_devices_with_one_name_or_one_address_refused():
    with pytest.raises(ValidationError, match="devices: 'main incomer' appears twice"):
        _settings_with_devices(SIM_DEVICE, {**SIM_DEVICE, "name": "MAIN INCOMER", "unit_id": 2})
    with pytest.raises(ValidationError, match="'meter unit 1' appears twice"):
        _settings_with_devices(SIM_DEVICE, {**SIM_DEVICE, "name": "Other"})


def test_unknown_time_zone_and_short_rollup_retention_refused():
    with pytest.raises(ValidationError, match="not a known IANA time zone"):
        Settings.model_validate({"timezone": "Mars/Olympus"})
    with pytest.raises(ValidationError, match="rollup_retention_days must not be shorter"):
        Settings.model_validate(
            {"datalogger": {"raw_retention_days": 400, "rollup_retention_days": 300}}
        )
