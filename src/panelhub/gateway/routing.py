"""Which bus, and which address on it, an upstream unit ID reaches.

Unit X goes, by default, to server X on the default bus (the reference device's transparent
mode). Configured routes override that for single unit IDs, which is how TCP devices and other
lines get their "virtual" unit IDs. Unit 255 is the gateway itself and never routed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from panelhub.config.models import LOCAL_UNIT_ID

B = TypeVar("B")


@dataclass(frozen=True, slots=True)
class Route(Generic[B]):
    bus: B
    unit_id: int


class Router(Generic[B]):
    """Pure lookup table; built once from the configuration."""

    __slots__ = ("_default", "_routes")

    def __init__(self, routes: Mapping[int, Route[B]], *, default_bus: B | None = None) -> None:
        self._routes = dict(routes)
        self._default = default_bus

    def resolve(self, unit_id: int) -> Route[B] | None:
        """The route for ``unit_id``, or None when the gateway has no path to it (0x0A)."""
        route = self._routes.get(unit_id)
        if route is not None:
            return route
        if self._default is None or unit_id == LOCAL_UNIT_ID or unit_id > 247:
            return None
        # Unit 0 is the broadcast address on a serial line; 1-247 map to themselves.
        route = Route(self._default, unit_id)
        self._routes[unit_id] = route
        return route
