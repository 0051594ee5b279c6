"""The datalogger as the service runs it: store, templates, poller, rollups and discovery.

``DataloggerService`` is what the energy pages see (``web.context.DataloggerView``). It polls
through the gateway's buses (looked up by name at each read, so a settings change that
replaces a bus is followed at once) and rebuilds its plans when devices or models change.

Files: ``datalog.sqlite`` (time series, 0600) and ``models/`` (custom models, 0700, each
file 0600) in the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final

from panelhub.config.models import DeviceConfig, Settings, TCPBusConfig
from panelhub.datalogger.plans import build_plan, logged_measurements, template_for
from panelhub.datalogger.poller import DevicePlan, PollClock, Poller, SystemClock
from panelhub.datalogger.rollupworker import FIVE_MINUTES, SETTLE_S, RollupWorker
from panelhub.devices.catalog import TEMPLATE_SUFFIX, TemplateCatalog, parse_custom
from panelhub.devices.discovery import ScanProgress, ScanState, scan_all
from panelhub.devices.template import DeviceTemplate
from panelhub.energy.counters import CounterSpec, MeterReplacement, rollover_for
from panelhub.errors import DeviceError, DiscoveryCancelledError, PanelHubError
from panelhub.storage.series import Resolution, SeriesKind
from panelhub.storage.timeseries import TimeSeriesStore, open_datalog
from panelhub.transport.bus import Bus
from panelhub.web.context import DeviceView, LiveReading, ScanRequest

logger = logging.getLogger(__name__)

DATALOG_FILE: Final = "datalog.sqlite"
MODELS_DIR: Final = "models"
#: Wait between two attempts of a task that failed (the store gone read-only, say).
RESTART_DELAY_S: Final = 10.0
#: Per address during discovery: a device that is there answers well within this.
SCAN_TIMEOUT_S: Final = 1.0
#: Finished discovery runs kept for their pages to show; the oldest go first.
MAX_SCANS_KEPT: Final = 8
SECONDS_PER_DAY: Final = 86_400
SECONDS_PER_HOUR: Final = 3_600
#: Above any low-voltage switchboard (a 6,300 A incomer at 400 V is 4.4 MVA): an energy
#: counter that grows faster read wrong, and its jump is left out instead of drawn as a spike.
MAX_POWER_W: Final = 10_000_000.0
ENERGY_UNITS: Final = frozenset({"Wh", "varh", "VAh"})

BusFactory = Callable[[TCPBusConfig], Bus]


class DataloggerService:
    """See the module docstring; ``start`` once, ``apply`` on each settings change."""

    def __init__(
        self,
        settings: Settings,
        *,
        bus_for: Callable[[str], Bus | None],
        bus_factory: BusFactory,
        clock: PollClock | None = None,
    ) -> None:
        self.settings = settings
        self._bus_for = bus_for
        self._bus_factory = bus_factory
        self._clock = clock or SystemClock()
        self._models_dir = settings.data_dir / MODELS_DIR
        self._db = open_datalog(settings.data_dir / DATALOG_FILE)
        self._store = TimeSeriesStore(self._db)
        self._catalog = TemplateCatalog(self._models_dir if self._models_dir.is_dir() else None)
        self.rollups = RollupWorker(self._store)
        self.poller = Poller([], bus_for=bus_for, store=self._store.append, clock=self._clock)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._scans: dict[str, tuple[ScanProgress, asyncio.Task[None]]] = {}
        self._scan_ids = itertools.count(1)
        self._lock = asyncio.Lock()

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self._rebuild(self.settings)
        self._tasks["rollups"] = asyncio.create_task(self._supervise("rollups", self._rollup_loop))

    async def apply(self, settings: Settings) -> None:
        """Follow a settings change: new devices, periods or models from the next slot on."""
        old, self.settings = self.settings, settings
        if (old.devices, old.datalogger) != (settings.devices, settings.datalogger):
            await self._rebuild(settings)

    async def aclose(self) -> None:
        tasks = [*self._tasks.values(), *(task for _progress, task in self._scans.values())]
        for task in tasks:
            task.cancel()
        # Tasks of another loop (a test client's) are done by now; the rest end here.
        await asyncio.gather(*(t for t in tasks if not t.done()), return_exceptions=True)
        self._tasks.clear()
        self._scans.clear()
        self._db.close()  # closing twice is harmless: the pages' tests close it on two loops

    async def _rebuild(self, settings: Settings) -> None:
        async with self._lock:
            plans, counters = await self._plans(settings)
            old = {plan.name: plan for plan in self.poller.plans}
            for plan in plans:  # a device keeps its health record across a rebuild
                if plan.name in old:
                    plan.health = old[plan.name].health
            task = self._tasks.pop("poller", None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            live = self.poller.live
            self.poller = Poller(
                plans, bus_for=self._bus_for, store=self._store.append, clock=self._clock
            )
            self.poller.live = live
            self.rollups.counters = counters
            if settings.datalogger.enable and plans:
                self._tasks["poller"] = asyncio.create_task(
                    self._supervise("poller", self.poller.run)
                )

    async def _plans(self, settings: Settings) -> tuple[list[DevicePlan], dict[int, CounterSpec]]:
        plans: list[DevicePlan] = []
        counters: dict[int, CounterSpec] = {}
        for device in settings.devices:
            if not device.enable:
                continue
            try:
                template = template_for(device, self._catalog)
                logged = logged_measurements(device, template)
            except DeviceError as exc:
                logger.error("device %s is not polled: %s", device.name, exc)  # noqa: TRY400
                continue
            ids: dict[tuple[str, str], int] = {}
            registered = await self._store.register_device(
                device.name,
                [(i.measurement.key, i.measurement.kind, i.measurement.unit, i.period_s)
                 for i in logged],
            )  # fmt: skip
            for info in registered:
                ids[device.name, info.key] = info.series_id
                if info.kind is SeriesKind.COUNTER:
                    counters[info.series_id] = _counter_spec(device, template, info.key)
            plans.append(build_plan(device, template, ids))
        return plans, counters

    async def _supervise(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while True:
            try:
                await work()
            except Exception:  # a task root: log, wait, start again
                logger.exception("datalogger %s failed; starting it again", name)
                await asyncio.sleep(RESTART_DELAY_S)
            else:
                return

    async def _rollup_loop(self) -> None:
        while True:
            now = self._clock.time()
            await self.rollups.run_once(now)
            # Retention by whole UTC days: a boundary inside a day would re-encode that day's
            # chunk of every series at every pass, to drop five minutes.
            today = int(now) // SECONDS_PER_DAY * SECONDS_PER_DAY
            retention = self.settings.datalogger
            await self._store.purge_raw(today - retention.raw_retention_days * SECONDS_PER_DAY)
            for resolution in Resolution:
                days = retention.rollup_retention_days
                await self._store.purge_rollups(resolution, today - days * SECONDS_PER_DAY)
            next_run = (int(now) // FIVE_MINUTES + 1) * FIVE_MINUTES + SETTLE_S
            await self._clock.sleep_until(next_run)

    # -- what the pages see (web.context.DataloggerView) ------------------------------------

    @property
    def store(self) -> TimeSeriesStore:
        return self._store

    @property
    def catalog(self) -> TemplateCatalog:
        return self._catalog

    def devices(self) -> Sequence[DeviceView]:
        plans = {plan.name: plan for plan in self.poller.plans}
        views = []
        for device in self.settings.devices:
            plan = plans.get(device.name)
            health = plan.health if plan is not None else None
            views.append(
                DeviceView(
                    config=device,
                    template=self._catalog.get(device.model),
                    state="disabled" if health is None else str(health.state),
                    since=0.0 if health is None else health.since_s,
                    last_error="" if health is None else health.last_error,
                    last_answer_at=0.0 if health is None else health.last_answer_s,
                )
            )
        return views

    def live(self, device: str) -> Sequence[LiveReading]:
        config = next((d for d in self.settings.devices if d.name == device), None)
        template = None if config is None else self._catalog.get(config.model)
        if config is None or template is None:
            return []
        self.poller.watch(device)
        readings = []
        for m in template.measurements:
            value = self.poller.live.get((device, m.key))
            readings.append(
                LiveReading(
                    key=m.key,
                    name=m.name,
                    unit=m.unit,
                    value=value.value if value is not None and value.is_valid else None,
                    read_at=0.0 if value is None else value.ts,
                )
            )
        return readings

    async def save_model(self, text: str) -> DeviceTemplate:
        template = parse_custom(text, source="model")
        await asyncio.to_thread(_write_private, self._models_dir, template.id, text)
        await self._reload_catalog()
        return template

    async def delete_model(self, model_id: str) -> None:
        if model_id not in self._catalog.custom:
            raise DeviceError(f"{model_id!r} is not a custom model")
        users = [d.name for d in self.settings.devices if d.model == model_id]
        if users:
            raise DeviceError(
                f"model {model_id!r} is used by {', '.join(users)}: change them first"
            )
        path = self._models_dir / f"{model_id}{TEMPLATE_SUFFIX}"
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await self._reload_catalog()

    async def _reload_catalog(self) -> None:
        self._catalog = TemplateCatalog(self._models_dir)
        await self._rebuild(self.settings)

    def start_scan(self, request: ScanRequest) -> str:
        targets = self._scan_targets(request)
        progress = ScanProgress(total=sum(len(ids) for _bus, ids, _temp in targets))
        scan_id = str(next(self._scan_ids))
        task = asyncio.create_task(self._run_scan(targets, progress))
        self._scans[scan_id] = (progress, task)
        while len(self._scans) > MAX_SCANS_KEPT:
            oldest = next(iter(self._scans))
            if self._scans[oldest][0].state is ScanState.RUNNING:
                break
            del self._scans[oldest]
        return scan_id

    def scan(self, scan_id: str) -> ScanProgress | None:
        entry = self._scans.get(scan_id)
        return None if entry is None else entry[0]

    def _scan_targets(self, request: ScanRequest) -> list[tuple[Bus, Sequence[int], bool]]:
        """(bus, unit IDs, is_temporary) for each target; raises DeviceError for a bad one."""
        if request.bus is not None:
            bus = self._bus_for(request.bus)
            if bus is None:
                raise DeviceError(f"there is no bus {request.bus!r}")
            return [(bus, request.unit_ids, False)]
        targets = []
        for index, entry in enumerate(request.hosts):
            host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            try:
                config = TCPBusConfig(
                    kind="tcp",
                    name=f"discovery-{index}",
                    host=host or entry,
                    port=int(port) if port else 502,
                    response_timeout_s=SCAN_TIMEOUT_S,
                    connect_timeout_s=SCAN_TIMEOUT_S,
                )
            except ValueError as exc:
                raise DeviceError(f"{entry!r} is not a host or host:port") from exc
            targets.append((self._bus_factory(config), request.unit_ids, True))
        return targets

    async def _run_scan(
        self, targets: list[tuple[Bus, Sequence[int], bool]], progress: ScanProgress
    ) -> None:
        try:
            templates = list(self._catalog.values())
            pairs = [(bus, ids) for bus, ids, _temporary in targets]
            await scan_all(pairs, templates, progress=progress, timeout_s=SCAN_TIMEOUT_S)
        except DiscoveryCancelledError:
            logger.info(
                "discovery cancelled after %d of %d addresses", progress.done, progress.total
            )
        except PanelHubError as exc:
            progress.state, progress.error = ScanState.FAILED, str(exc)
            logger.warning("discovery failed: %s", exc)
        finally:
            for bus, _ids, is_temporary in targets:
                if is_temporary:
                    await bus.aclose()


def _counter_spec(device: DeviceConfig, template: DeviceTemplate, key: str) -> CounterSpec:
    measurement = template.measurement(key)
    replacements = tuple(
        MeterReplacement(int(r.at.timestamp()), r.old_final, r.new_initial)
        for r in device.replacements
        if r.key == key
    )
    max_rate_per_s = None
    if measurement.si_unit in ENERGY_UNITS:  # Wh, varh, VAh: no panel draws more than this
        max_rate_per_s = MAX_POWER_W / SECONDS_PER_HOUR / measurement.to_si(1.0)
    return CounterSpec(
        rollover_at=rollover_for(measurement.data_type.value, scale=measurement.scale),
        max_rate_per_s=max_rate_per_s,
        replacements=replacements,
    )


def _write_private(folder: Path, model_id: str, text: str) -> None:
    """Write ``<id>.toml`` atomically, 0600 in a 0700 folder (models are the owner's data)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = folder / f"{model_id}{TEMPLATE_SUFFIX}"
    temporary = folder / f".{model_id}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
