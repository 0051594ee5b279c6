"""Simulated meters served by pymodbus, for ``panelhub sim``, ``panelhub demo`` and the tests.

The value model (:mod:`~panelhub.sim.physics`, :mod:`~panelhub.sim.model`) is pure; the
register maps are in :mod:`~panelhub.sim.kinds`, and any device template is served by
:mod:`~panelhub.sim.templated`; serving is in :mod:`~panelhub.sim.server`
and :mod:`~panelhub.sim.runner`; the RTU line is a pty pair from :mod:`~panelhub.sim.pty`.
"""

from __future__ import annotations

from panelhub.sim.device import Meter, SimulatedDevice, SimulatedMeter
from panelhub.sim.kinds import PROFILES, MeterKind
from panelhub.sim.model import MeterModel, Rating, Reading
from panelhub.sim.pty import LineTiming, LinkedPtyPair
from panelhub.sim.runner import (
    DEMO_BASE_PORT,
    RtuLineSpec,
    SimulatorHandle,
    SimulatorSpec,
    TcpServerSpec,
    default_demo_spec,
    run_simulator,
    serve_forever,
)
from panelhub.sim.server import Clock, RtuEndpoint, RtuLine, TcpEndpoint, serve_rtu, serve_tcp
from panelhub.sim.templated import TemplateMeter, simulate

__all__ = [
    "DEMO_BASE_PORT",
    "PROFILES",
    "Clock",
    "LineTiming",
    "LinkedPtyPair",
    "Meter",
    "MeterKind",
    "MeterModel",
    "Rating",
    "Reading",
    "RtuEndpoint",
    "RtuLine",
    "RtuLineSpec",
    "SimulatedDevice",
    "SimulatedMeter",
    "SimulatorHandle",
    "SimulatorSpec",
    "TcpEndpoint",
    "TcpServerSpec",
    "TemplateMeter",
    "default_demo_spec",
    "run_simulator",
    "serve_forever",
    "serve_rtu",
    "serve_tcp",
    "simulate",
]
