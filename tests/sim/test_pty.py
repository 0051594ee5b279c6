"""The linked pty pair: bytes cross both ways, at line speed when asked, and nothing leaks."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

import pytest

from panelhub.sim.pty import LineTiming, LinkedPtyPair, bits_per_character


def open_end(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_NOCTTY)


def read_exactly(fd: int, count: int, timeout_s: float = 2.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout_s
    while len(data) < count:
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([fd], [], [], max(0.0, remaining))
        if not readable:
            break
        data += os.read(fd, count - len(data))
    return data


@pytest.mark.parametrize(
    ("parity", "stop_bits", "bits"),
    [("N", 1, 10), ("E", 1, 11), ("O", 1, 11), ("N", 2, 11), ("E", 2, 12)],
)
def test_bits_per_character(parity, stop_bits, bits):
    assert bits_per_character(parity=parity, stop_bits=stop_bits) == bits


def test_bytes_cross_both_ways_unchanged(no_leaks):
    payload = bytes(range(256)) * 4  # every byte value, including XON/XOFF and ^C: raw mode
    with LinkedPtyPair() as pair:
        device, client = open_end(pair.device_path), open_end(pair.client_path)
        try:
            os.write(client, payload)
            assert read_exactly(device, len(payload)) == payload
            os.write(device, b"\x01\x03\x02\x00\x2a")
            assert read_exactly(client, 5) == b"\x01\x03\x02\x00\x2a"
        finally:
            os.close(device)
            os.close(client)


def test_line_timing_paces_bytes_at_the_baud_rate(no_leaks):
    timing = LineTiming(baud_rate=19200, bits_per_character=11)
    count = 96
    expected_s = count * 11 / 19200  # 55 ms
    with LinkedPtyPair(timing=timing) as pair:
        device, client = open_end(pair.device_path), open_end(pair.client_path)
        try:
            started = time.monotonic()
            os.write(client, b"\x55" * count)
            first = read_exactly(device, 1)
            first_s = time.monotonic() - started
            rest = read_exactly(device, count - 1)
            elapsed_s = time.monotonic() - started
        finally:
            os.close(device)
            os.close(client)
    assert first + rest == b"\x55" * count
    assert first_s < expected_s / 2
    assert expected_s * 0.95 <= elapsed_s < expected_s + 0.1


def test_a_client_may_reopen_its_end(no_leaks):
    with LinkedPtyPair() as pair:
        for _ in range(2):
            device, client = open_end(pair.device_path), open_end(pair.client_path)
            os.write(client, b"ping")
            assert read_exactly(device, 4) == b"ping"
            os.close(client)
            os.close(device)


def test_paths_exist_only_while_open():
    pair = LinkedPtyPair()
    with pytest.raises(RuntimeError):
        _ = pair.client_path
    with pair:
        assert Path(pair.client_path).exists()
        assert pair.client_path != pair.device_path
    with pytest.raises(RuntimeError):
        _ = pair.device_path


def test_baud_rate_must_be_positive():
    with pytest.raises(ValueError, match="baud_rate"):
        LineTiming(baud_rate=0)
