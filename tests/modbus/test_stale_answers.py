"""An RTU client tells its answer from a late answer to an earlier read by the byte count."""

from __future__ import annotations

import pytest

from panelhub.modbus import rtu
from panelhub.modbus.decoder import RTUResponseDecoder
from panelhub.modbus.pdu import expected_byte_count
from panelhub.modbus.sentinels import NEED_DATA


@pytest.mark.parametrize(
    ("request_hex", "expected"),
    [
        ("01 0013 0013", 3),  # §6.1: 19 coils -> 3 bytes
        ("02 00C4 0016", 3),  # §6.2: 22 inputs -> 3 bytes
        ("03 006B 0003", 6),  # §6.3: 3 registers -> 6 bytes
        ("04 0008 0001", 2),  # §6.4
        ("17 0003 0006 000E 0003 06 00FF 00FF 00FF", 12),  # §6.17: reads 6 registers
        ("01 0000 0008", 1),
        ("06 0001 0003", None),  # writes echo: no byte count
        ("2B 0E 01 00", None),
        ("03 00", None),  # too short to say
    ],
)
def test_expected_byte_count(request_hex, expected):
    assert expected_byte_count(bytes.fromhex(request_hex)) == expected


def test_a_late_answer_with_another_count_is_skipped():
    late = rtu.encode_frame(1, bytes.fromhex("03 02 0007"))  # answer to a 1-register read
    ours = rtu.encode_frame(1, bytes.fromhex("03 04 0001 0002"))
    decoder = RTUResponseDecoder(1, 3, expected_byte_count=4)
    assert decoder.feed(late) is NEED_DATA
    assert decoder.feed(ours) == bytes.fromhex("03 04 0001 0002")


def test_exception_answers_pass_whatever_the_count():
    decoder = RTUResponseDecoder(1, 3, expected_byte_count=4)
    assert decoder.feed(rtu.encode_frame(1, b"\x83\x02")) == b"\x83\x02"


def test_without_an_expected_count_the_first_valid_answer_is_taken():
    decoder = RTUResponseDecoder(1, 3)
    assert decoder.feed(rtu.encode_frame(1, bytes.fromhex("03 02 0007"))) == b"\x03\x02\x00\x07"
