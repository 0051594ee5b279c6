"""Simulated meters served by pymodbus, for ``panelhub sim``, ``panelhub demo`` and the tests.

The value model (:mod:`~panelhub.sim.physics`, :mod:`~panelhub.sim.model`) is pure; the
register maps are in :mod:`~panelhub.sim.kinds`; serving is in :mod:`~panelhub.sim.server`
and :mod:`~panelhub.sim.runner`; the RTU line is a pty pair from :mod:`~panelhub.sim.pty`.
"""

from __future__ import annotations

from panelhub.sim.device import Meter, SimulatedMeter
from panelhub.sim.kinds import PROFILES, MeterKind
from panelhub.sim.model import MeterModel, Reading
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
from panelhub.sim.server import RtuEndpoint, RtuLine, TcpEndpoint, serve_rtu, serve_tcp

__all__ = [
    "DEMO_BASE_PORT",
    "PROFILES",
    "LineTiming",
    "LinkedPtyPair",
    "Meter",
    "MeterKind",
    "MeterModel",
    "Reading",
    "RtuEndpoint",
    "RtuLine",
    "RtuLineSpec",
    "SimulatedMeter",
    "SimulatorHandle",
    "SimulatorSpec",
    "TcpEndpoint",
    "TcpServerSpec",
    "default_demo_spec",
    "run_simulator",
    "serve_forever",
    "serve_rtu",
    "serve_tcp",
]
