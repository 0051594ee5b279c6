"""Who may connect to a listener and which requests it lets through; pure decisions."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from panelhub.config.models import ListenerConfig
from panelhub.modbus.constants import WRITE_FUNCTION_CODES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2): how a dual-stack socket shows IPv4 clients.
IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped(network: IPNetwork) -> IPNetwork:
    """An IPv4-mapped network as the IPv4 network it stands for: clients are compared unmapped."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(IPV4_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None  # noqa: S101 - inside ::ffff:0:0/96
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused; the gateway answers exception 01 and logs ``reason``."""

    reason: str


class Policy:
    """The access rules of one listener."""

    __slots__ = ("_allowed_codes", "_allowed_units", "_networks", "_read_only")

    def __init__(self, config: ListenerConfig) -> None:
        self._networks = tuple(
            _unmapped(ipaddress.ip_network(net, strict=False)) for net in config.allow_clients
        )
        codes = frozenset(config.allow_function_codes)
        if config.is_read_only:
            codes -= WRITE_FUNCTION_CODES
        self._allowed_codes = codes
        self._allowed_units = frozenset(config.allow_unit_ids) or None
        self._read_only = config.is_read_only

    def allows_client(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)

    def check_request(self, unit_id: int, function_code: int) -> Refusal | None:
        """None when allowed; otherwise the reason for refusing it."""
        if function_code not in self._allowed_codes:
            if self._read_only and function_code in WRITE_FUNCTION_CODES:
                return Refusal(f"function {function_code} writes and the listener is read-only")
            return Refusal(f"function {function_code} is not allowed on this listener")
        if self._allowed_units is not None and unit_id not in self._allowed_units:
            return Refusal(f"unit {unit_id} is not allowed on this listener")
        return None
