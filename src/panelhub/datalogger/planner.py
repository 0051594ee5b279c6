"""The read planner: the fewest Modbus reads that fetch a device's measurements within its limits.

Pure: no I/O, no clock. The poller hands in what to read (:class:`ReadItem`) and the device's
limits; it gets back the requests to send (:class:`ReadRequest`) and, per request, where each
item sits in the answer, so :func:`split_response` can hand every measurement its words.

Rules:

- Items of one function code are merged while the merged request stays within the device's
  maximum count and no stretch of addresses that no item names is longer than ``max_gap``.
  Reading over a few unnamed registers costs two bytes each; a request more costs a round trip
  (tens of milliseconds on a serial line), hence the merging.
- An item is never split: a float32 read in two halves could tear between two updates.
- Items may overlap (a status word and the alarm bits inside it): the shared registers are
  read once and each item gets its own slice. Two items with the same key are an error.
- ``max_gap`` is counted in the function's own addresses: registers for functions 3 and 4,
  bits for 1 and 2.
- Greedy by address: items are taken in (function, address) order and each joins the current
  request if it fits, else starts the next one. This gives the fewest requests: an item that
  does not fit the current request cannot fit any earlier one, and whatever fits the current
  request would also fit the next one, which starts further on and reaches further.

Worked example (limit 10 registers, ``max_gap`` 2)::

    items   a: 3@100 x2   b: 3@102 x2   c: 3@106 x2   d: 3@108 x4   e: 4@0 x1
    plan    3@100 x8 [a+0 b+2 c+6]   3@108 x4 [d+0]   4@0 x1 [e+0]

``c`` joins ``a`` and ``b`` over the gap 104..105 (2 <= max_gap); ``d`` would make the request
12 registers long, so it starts another; ``e`` is another function code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from panelhub.modbus.constants import MAX_READ_BITS, MAX_READ_REGISTERS, FunctionCode

#: The read functions the planner knows, with their per-request limits (Application Protocol
#: v1.1b3 §6.1-6.4: 2000 coils or inputs, 125 registers).
_BIT_FUNCTIONS: Final = frozenset({FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS})
_REGISTER_FUNCTIONS: Final = frozenset(
    {FunctionCode.READ_HOLDING_REGISTERS, FunctionCode.READ_INPUT_REGISTERS}
)
#: Modbus addresses are 16 bits (Application Protocol v1.1b3 §4.4).
_ADDRESS_SPACE: Final = 0x10000


@dataclass(frozen=True, slots=True)
class ReadItem:
    """A range of one device's address space that one measurement (``key``) needs."""

    key: str
    function: int  # 1, 2 (bits) or 3, 4 (registers)
    address: int  # 0-based protocol address
    count: int

    def __post_init__(self) -> None:
        if self.function not in _BIT_FUNCTIONS | _REGISTER_FUNCTIONS:
            raise ValueError(f"{self.key}: function {self.function} is not a read (1, 2, 3 or 4)")
        if self.count < 1 or not 0 <= self.address <= self.address + self.count <= _ADDRESS_SPACE:
            raise ValueError(
                f"{self.key}: {self.count} from address {self.address} is outside 0..65535"
            )

    @property
    def end(self) -> int:
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class ItemSlice:
    """Where an item's words (or bits) sit in its request's answer."""

    key: str
    offset: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadRequest:
    function: int
    address: int
    count: int
    items: tuple[ItemSlice, ...]


def plan_reads(
    items: Iterable[ReadItem],
    *,
    max_registers_per_request: int = MAX_READ_REGISTERS,
    max_bits_per_request: int = MAX_READ_BITS,
    max_gap: int = 0,
) -> list[ReadRequest]:
    """The fewest requests that read every item, in (function, address) order.

    Raises:
        ValueError: two items share a key, an item is longer than its function's limit, or a
            limit is outside what the protocol allows.
    """
    _check_limits(max_registers_per_request, max_bits_per_request, max_gap)
    ordered = sorted(items, key=lambda item: (item.function, item.address, item.count, item.key))
    _check_keys(ordered)
    requests: list[ReadRequest] = []
    group: list[ReadItem] = []
    for item in ordered:
        limit = (
            max_bits_per_request if item.function in _BIT_FUNCTIONS else max_registers_per_request
        )
        if item.count > limit:
            raise ValueError(
                f"{item.key}: {item.count} addresses do not fit one request (the device allows "
                f"{limit}); an item is never split"
            )
        if group and not _fits(group, item, limit=limit, max_gap=max_gap):
            requests.append(_request(group))
            group = []
        group.append(item)
    if group:
        requests.append(_request(group))
    return requests


def split_response(request: ReadRequest, values: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Each item's words (or bits, as 0/1) out of the answer to ``request``.

    Raises:
        ValueError: the answer does not hold exactly ``request.count`` values.
    """
    if len(values) != request.count:
        raise ValueError(
            f"the answer holds {len(values)} values, the request asked for {request.count}"
        )
    return {
        item.key: tuple(values[item.offset : item.offset + item.count]) for item in request.items
    }


def _check_limits(max_registers: int, max_bits: int, max_gap: int) -> None:
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers_per_request {max_registers} is outside 1..125")
    if not 1 <= max_bits <= MAX_READ_BITS:
        raise ValueError(f"max_bits_per_request {max_bits} is outside 1..2000")
    if max_gap < 0:
        raise ValueError(f"max_gap {max_gap} is negative")


def _check_keys(items: Sequence[ReadItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            raise ValueError(f"{item.key}: named twice in one device's reads")
        seen.add(item.key)


def _fits(group: Sequence[ReadItem], item: ReadItem, *, limit: int, max_gap: int) -> bool:
    start = group[0].address
    # Items come in address order, so the uncovered stretch before ``item`` is what lies
    # between the furthest end so far and its start.
    reached = max(member.end for member in group)
    return (
        item.function == group[0].function
        and item.address - reached <= max_gap
        and max(reached, item.end) - start <= limit
    )


def _request(group: Sequence[ReadItem]) -> ReadRequest:
    start = group[0].address
    end = max(item.end for item in group)
    slices = tuple(ItemSlice(item.key, item.address - start, item.count) for item in group)
    return ReadRequest(group[0].function, start, end - start, slices)
