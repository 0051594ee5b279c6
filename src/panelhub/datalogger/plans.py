"""From configured devices and their templates to what the poller reads, and when.

A device's measurements are logged at the device's period unless a measurement says
otherwise (another period, or off); each period becomes one group of merged reads. Every
measurement, logged or not, is also in the device's live group, read only while the
monitoring page watches the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from panelhub.config.models import DeviceConfig
from panelhub.datalogger.planner import ReadItem, plan_reads
from panelhub.datalogger.poller import DevicePlan, PolledMeasurement, PollGroup
from panelhub.devices.template import DeviceTemplate, Measurement
from panelhub.errors import DeviceError

SECONDS_PER_MINUTE = 60


@dataclass(frozen=True, slots=True)
class LoggedMeasurement:
    """A measurement the store keeps a series for."""

    device: str
    measurement: Measurement
    period_s: int


def template_for(device: DeviceConfig, catalog: Mapping[str, DeviceTemplate]) -> DeviceTemplate:
    try:
        return catalog[device.model]
    except KeyError:
        raise DeviceError(
            f"device {device.name!r} names model {device.model!r}, which is not a known "
            "template: import it as a custom model or choose another"
        ) from None


def logged_measurements(device: DeviceConfig, template: DeviceTemplate) -> list[LoggedMeasurement]:
    """Raises DeviceError when the device's settings name a key its template lacks."""
    overrides = {item.key: item for item in device.measurements}
    unknown = sorted(set(overrides) - {m.key for m in template.measurements})
    if unknown:
        raise DeviceError(
            f"device {device.name!r}: model {template.id!r} has no measurement "
            + ", ".join(repr(key) for key in unknown)
        )
    logged = []
    for measurement in template.measurements:
        override = overrides.get(measurement.key)
        if override is not None and not override.enable:
            continue
        period_min = device.period_min
        if override is not None and override.period_min is not None:
            period_min = override.period_min
        logged.append(LoggedMeasurement(device.name, measurement, period_min * SECONDS_PER_MINUTE))
    return logged


def build_plan(
    device: DeviceConfig, template: DeviceTemplate, series_ids: Mapping[tuple[str, str], int]
) -> DevicePlan:
    """The poller's plan for ``device``; ``series_ids`` maps (device, key) to the store's series."""
    by_period: dict[int, list[Measurement]] = {}
    for logged in logged_measurements(device, template):
        by_period.setdefault(logged.period_s, []).append(logged.measurement)
    groups = [
        _group(device, template, measurements, period_s=period, series_ids=series_ids)
        for period, measurements in sorted(by_period.items())
    ]
    groups.append(
        _group(
            device,
            template,
            list(template.measurements),
            period_s=device.live_period_s,
            series_ids={},
            is_live=True,
        )
    )
    return DevicePlan(device.name, device.bus, device.unit_id, tuple(groups))


def _group(
    device: DeviceConfig,
    template: DeviceTemplate,
    measurements: list[Measurement],
    *,
    period_s: int,
    series_ids: Mapping[tuple[str, str], int],
    is_live: bool = False,
) -> PollGroup:
    limits = template.limits
    max_registers = device.max_registers_per_request or limits.max_registers_per_request
    max_gap = limits.max_gap if device.max_gap is None else device.max_gap
    items = [ReadItem(m.key, int(m.function), m.address, m.register_count) for m in measurements]
    requests = plan_reads(items, max_registers_per_request=max_registers, max_gap=max_gap)
    polled = {
        m.key: PolledMeasurement(m.key, series_ids.get((device.name, m.key)), m.decode)
        for m in measurements
    }
    return PollGroup(period_s, tuple(requests), polled, is_live=is_live)
