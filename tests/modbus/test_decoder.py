"""Incremental decoders: arbitrary chunking, bounded buffers, errors, RTU resynchronisation."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.errors import ProtocolError, RemoteProtocolError
from panelhub.modbus import mbap, rtu
from panelhub.modbus.constants import MAX_RTU_ADU_SIZE, MAX_TCP_ADU_SIZE
from panelhub.modbus.decoder import RTU_HUNT_WINDOW, MBAPDecoder, RTUResponseDecoder
from panelhub.modbus.mbap import TCPFrame
from panelhub.modbus.sentinels import FRAME_ENDS_AT_SILENCE, NEED_DATA

FUZZ = settings(max_examples=150, deadline=None)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (any order, duplicates allowed: empty chunks)."""
    points = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(points)]


frames_strategy = st.lists(
    st.builds(
        TCPFrame,
        transaction_id=st.integers(0, 0xFFFF),
        unit_id=st.integers(0, 0xFF),
        pdu=st.binary(min_size=1, max_size=253),
    ),
    max_size=6,
)


# --- MBAP -------------------------------------------------------------------------------------


def test_mbap_one_frame_in_one_piece():
    decoder = MBAPDecoder()
    wire = bytes.fromhex("0001 0000 0006 11 03006B0003")
    assert decoder.feed(wire) == [TCPFrame(1, 0x11, bytes.fromhex("03006B0003"))]
    assert decoder.buffered == 0


def test_mbap_byte_by_byte():
    decoder = MBAPDecoder()
    wire = bytes.fromhex("0001 0000 0006 11 03006B0003")
    for byte in wire[:-1]:
        assert decoder.feed(bytes((byte,))) == []
    assert decoder.buffered == len(wire) - 1
    assert decoder.feed(wire[-1:]) == [TCPFrame(1, 0x11, bytes.fromhex("03006B0003"))]
    assert decoder.buffered == 0


def test_mbap_several_frames_and_a_partial_one():
    decoder = MBAPDecoder()
    one = mbap.encode_frame(1, 1, b"\x03\x00\x00\x00\x01")
    two = mbap.encode_frame(2, 2, b"\x83\x02")
    three = mbap.encode_frame(3, 3, b"\x07")
    assert decoder.feed(one + two + three[:4]) == [
        TCPFrame(1, 1, b"\x03\x00\x00\x00\x01"),
        TCPFrame(2, 2, b"\x83\x02"),
    ]
    assert decoder.buffered == 4
    assert decoder.feed(three[4:]) == [TCPFrame(3, 3, b"\x07")]
    assert decoder.buffered == 0


def test_mbap_empty_feed():
    decoder = MBAPDecoder()
    assert decoder.feed(b"") == []
    assert decoder.buffered == 0


def test_mbap_bad_header_after_buffered_bytes_raises_and_drops_everything():
    decoder = MBAPDecoder()
    decoder.feed(b"\x00\x01\x00")
    with pytest.raises(RemoteProtocolError, match="protocol ID"):
        decoder.feed(b"\x01\x00\x06\x01" + bytes(10_000))
    assert decoder.buffered == 0


def test_mbap_hostile_length_refused_with_header_only():
    decoder = MBAPDecoder()
    with pytest.raises(RemoteProtocolError, match="MBAP length 255"):
        decoder.feed(bytes.fromhex("0001 0000 00FF 01"))
    assert decoder.buffered == 0


def test_mbap_largest_frame_held_just_below_the_bound():
    decoder = MBAPDecoder()
    wire = mbap.encode_frame(9, 1, bytes(253))
    assert len(wire) == MAX_TCP_ADU_SIZE
    assert decoder.feed(wire[:-1]) == []
    assert decoder.buffered == MAX_TCP_ADU_SIZE - 1
    assert decoder.feed(wire[-1:]) == [TCPFrame(9, 1, bytes(253))]


@FUZZ
@given(frames_strategy, st.lists(st.integers(0, 2000), max_size=12))
def test_mbap_round_trip_any_chunking(frames, cuts):
    wire = b"".join(mbap.encode_frame(*frame) for frame in frames)
    decoder = MBAPDecoder()
    decoded: list[TCPFrame] = []
    for chunk in _split(wire, cuts):
        decoded += decoder.feed(chunk)
        assert decoder.buffered < MAX_TCP_ADU_SIZE
    assert decoded == frames
    assert decoder.buffered == 0


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_mbap_random_bytes_raise_only_protocol_errors_and_stay_bounded(chunks):
    decoder = MBAPDecoder()
    for chunk in chunks:
        try:
            frames = decoder.feed(chunk)
        except ProtocolError:
            assert decoder.buffered == 0
            return
        assert all(isinstance(frame, TCPFrame) for frame in frames)
        assert decoder.buffered < MAX_TCP_ADU_SIZE


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=6))
def test_mbap_valid_headers_random_bodies_stay_bounded(body, cuts):
    # Headers that pass the checks, so the buffer really fills: the bound is the one that holds.
    wire = b""
    remaining = body
    while remaining:
        length = min(len(remaining), 253)
        wire += mbap.encode_frame(0, 1, remaining[:length])
        remaining = remaining[length:]
    decoder = MBAPDecoder()
    count = 0
    for chunk in _split(wire, cuts):
        count += len(decoder.feed(chunk))
        assert decoder.buffered < MAX_TCP_ADU_SIZE
    assert count == -(-len(body) // 253)


# --- RTU --------------------------------------------------------------------------------------

# §6.3 response on unit 0x11.
RESPONSE_PDU = bytes.fromhex("03 06 022B 0000 0064")
RESPONSE = rtu.encode_frame(0x11, RESPONSE_PDU)


def test_rtu_golden_response_in_one_piece():
    assert bytes.fromhex("11 03 06 022B00000064 C8 BA") == RESPONSE
    decoder = RTUResponseDecoder(0x11, 3)
    assert decoder.feed(RESPONSE) == RESPONSE_PDU
    assert decoder.feed(b"") is NEED_DATA  # the frame was consumed


def test_rtu_byte_by_byte():
    decoder = RTUResponseDecoder(0x11, 3)
    for byte in RESPONSE[:-1]:
        assert decoder.feed(bytes((byte,))) is NEED_DATA
    assert decoder.feed(RESPONSE[-1:]) == RESPONSE_PDU


def test_rtu_exception_response():
    frame = rtu.encode_frame(0x11, b"\x83\x02")
    assert RTUResponseDecoder(0x11, 3).feed(frame) == b"\x83\x02"


def test_rtu_skips_other_units_and_functions():
    other_unit = rtu.encode_frame(0x12, RESPONSE_PDU)
    other_function = rtu.encode_frame(0x11, b"\x04\x02\x00\x0a")
    decoder = RTUResponseDecoder(0x11, 3)
    assert decoder.feed(other_unit + other_function + RESPONSE) == RESPONSE_PDU


def test_rtu_skips_echo_of_the_request():
    # A line without echo suppression hands us our own request first: same unit, same function.
    request = bytes.fromhex("11 03 006B 0003 76 87")
    assert RTUResponseDecoder(0x11, 3).feed(request + RESPONSE) == RESPONSE_PDU


def test_rtu_resynchronises_after_corrupted_frame():
    corrupted = bytearray(RESPONSE)
    corrupted[5] ^= 0x40
    assert RTUResponseDecoder(0x11, 3).feed(bytes(corrupted) + RESPONSE) == RESPONSE_PDU


def test_rtu_garbage_without_the_address_is_dropped():
    decoder = RTUResponseDecoder(0x11, 3)
    assert decoder.feed(bytes(200)) is NEED_DATA
    assert decoder.feed(bytes(200)) is NEED_DATA  # the zeros were not kept
    assert decoder.feed(RESPONSE) == RESPONSE_PDU


def test_rtu_lone_trailing_address_may_start_the_frame():
    decoder = RTUResponseDecoder(0x11, 3)
    assert decoder.feed(b"\x00\x00\x11") is NEED_DATA
    assert decoder.feed(RESPONSE[1:]) == RESPONSE_PDU


def test_rtu_impossible_byte_count_is_not_waited_for():
    # FIFO byte count 0xFFFF from line noise would need 65,541 bytes: skip it, find the answer.
    fifo = rtu.encode_frame(0x11, bytes.fromhex("18 0006 0002 01B8 1284"))
    decoder = RTUResponseDecoder(0x11, 0x18)
    assert decoder.feed(b"\x11\x18\xff\xff" + fifo) == bytes.fromhex("18 0006 0002 01B8 1284")


def test_rtu_overlong_device_identification_noise_is_skipped():
    pdu = bytes.fromhex("2B 0E 01 01 00 00 01 00 02") + b"PH"
    noise = bytes.fromhex("11 2B 0E 01 01 00 00 01 00 FF")
    assert RTUResponseDecoder(0x11, 0x2B).feed(noise + rtu.encode_frame(0x11, pdu)) == pdu


def test_rtu_noise_with_plausible_lengths_stays_below_one_adu():
    # Candidate starts whose frames never check out are dropped once their length is there.
    decoder = RTUResponseDecoder(0x11, 3)
    for _ in range(RTU_HUNT_WINDOW):
        assert decoder.feed(b"\x11\x03\xfa") is NEED_DATA
        assert len(decoder._buffer) < MAX_RTU_ADU_SIZE
    assert decoder.feed(RESPONSE) is NEED_DATA  # inside the frame a noise candidate awaits
    # Once that candidate's bytes are there and fail their CRC, the hunt finds the response.
    assert decoder.feed(bytes(MAX_RTU_ADU_SIZE)) == RESPONSE_PDU


def test_rtu_window_applies_when_the_frame_ends_at_silence():
    # An uncountable function code: the decoder waits for the silence, but not forever.
    decoder = RTUResponseDecoder(0x11, 0x41)
    assert decoder.feed(b"\x11\x41") is FRAME_ENDS_AT_SILENCE
    assert decoder.feed(bytes(RTU_HUNT_WINDOW - 2)) is FRAME_ENDS_AT_SILENCE
    with pytest.raises(RemoteProtocolError, match="no valid RTU response"):
        decoder.feed(b"\x00")


def test_rtu_finish_after_silence():
    pdu = b"\x41\x01\x02\x03"
    decoder = RTUResponseDecoder(0x11, 0x41)
    frame = rtu.encode_frame(0x11, pdu)
    assert decoder.feed(b"\x05\x06" + frame[:3]) is FRAME_ENDS_AT_SILENCE
    assert decoder.feed(frame[3:]) is FRAME_ENDS_AT_SILENCE
    assert decoder.finish() == pdu


def test_rtu_finish_accepts_exception_to_uncountable_function():
    decoder = RTUResponseDecoder(0x11, 0x08)
    # Exception responses have a countable length even when the function's does not.
    assert decoder.feed(rtu.encode_frame(0x11, b"\x88\x01")) == b"\x88\x01"


@pytest.mark.parametrize(
    ("unit_id", "function_code", "pdu"),
    [
        pytest.param(0x11, 0x41, b"\x41", id="matching"),
        pytest.param(0x12, 0x41, b"\x41", id="other unit"),
        pytest.param(0x11, 0x42, b"\x41", id="other function"),
        pytest.param(0x11, 0x41, b"\xc1\x01", id="exception"),
    ],
)
def test_rtu_finish_checks_unit_and_function(unit_id, function_code, pdu):
    decoder = RTUResponseDecoder(unit_id, function_code)
    decoder._buffer += rtu.encode_frame(0x11, pdu)  # what the line held when it fell silent
    if unit_id == 0x11 and function_code == 0x41:
        assert decoder.finish() == pdu
    else:
        with pytest.raises(RemoteProtocolError, match="does not match"):
            decoder.finish()


@pytest.mark.parametrize("held", [b"", b"\x11\x41\x00", b"\x11\x41\x00\x00\x00"])
def test_rtu_finish_refuses_invalid_frames(held):
    decoder = RTUResponseDecoder(0x11, 0x41)
    decoder.feed(held)
    with pytest.raises(RemoteProtocolError):
        decoder.finish()


unit_ids = st.integers(1, 247)
read_responses = st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125).map(
    lambda values: (
        bytes((3, 2 * len(values))) + b"".join(value.to_bytes(2, "big") for value in values)
    )
)


@FUZZ
@given(unit_ids, read_responses, st.lists(st.integers(0, 300), max_size=8))
def test_rtu_round_trip_any_chunking(unit_id, pdu, cuts):
    frame = rtu.encode_frame(unit_id, pdu)
    decoder = RTUResponseDecoder(unit_id, 3)
    received = 0
    for chunk in _split(frame, cuts):
        received += len(chunk)
        result = decoder.feed(chunk)
        if received < len(frame):
            assert result is NEED_DATA
        elif chunk:
            assert result == pdu
        else:
            assert result is NEED_DATA  # an empty read after the answer does not repeat it


@FUZZ
@given(unit_ids, read_responses, st.data())
def test_rtu_finds_response_after_leading_garbage(unit_id, pdu, data):
    garbage = data.draw(
        st.lists(st.integers(0, 255).filter(lambda byte: byte != unit_id), max_size=300)
    )
    decoder = RTUResponseDecoder(unit_id, 3)
    assert decoder.feed(bytes(garbage) + rtu.encode_frame(unit_id, pdu)) == pdu


@FUZZ
@given(unit_ids, read_responses, read_responses, st.data())
def test_rtu_resynchronises_after_a_corrupted_frame(unit_id, bad_pdu, pdu, data):
    corrupted = bytearray(rtu.encode_frame(unit_id, bad_pdu))
    # Flip bits in a register value or the CRC; every single-byte error breaks the CRC.
    index = data.draw(st.integers(3, len(corrupted) - 1))
    corrupted[index] ^= data.draw(st.integers(1, 255))
    decoder = RTUResponseDecoder(unit_id, 3)
    result = decoder.feed(bytes(corrupted) + rtu.encode_frame(unit_id, pdu))
    # Bytes inside the corrupted frame may look like the start of a longer frame; more line
    # noise lets the decoder give that candidate up and find the real response.
    filler = bytes((0 if unit_id else 1,))
    while result is NEED_DATA:
        result = decoder.feed(filler * 16)
    assert result == pdu


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), st.lists(st.binary(max_size=200), max_size=8))
def test_rtu_random_bytes_raise_only_protocol_errors_and_stay_bounded(unit_id, function, chunks):
    decoder = RTUResponseDecoder(unit_id, function)
    for chunk in chunks:
        try:
            result = decoder.feed(chunk)
        except ProtocolError:
            return
        assert len(decoder._buffer) <= RTU_HUNT_WINDOW
        assert result is NEED_DATA or result is FRAME_ENDS_AT_SILENCE or type(result) is bytes
        if type(result) is bytes:
            # A frame was accepted: it is for this unit and function and fits an ADU.
            assert 1 <= len(result) <= MAX_RTU_ADU_SIZE - 3
            assert result[0] & 0x7F == function & 0x7F
            return
    with contextlib.suppress(ProtocolError):
        decoder.finish()


def _outcome(decoder: RTUResponseDecoder, chunks: list[bytes]) -> object:
    result: object = None
    try:
        for chunk in chunks:
            result = decoder.feed(chunk)
    except RemoteProtocolError:
        return RemoteProtocolError
    return result


@FUZZ
@given(
    unit_ids,
    st.integers(1, 250),
    st.one_of(
        read_responses.map(lambda pdu: (pdu, True)),
        st.binary(min_size=1, max_size=255).map(lambda raw: (raw, False)),
    ),
    st.integers(0, 3),
)
def test_rtu_one_read_answers_as_the_hunt_does(unit_id, byte_count, payload, tamper):
    """A whole frame in one read takes a shortcut; it must accept and refuse what the hunt does.

    The hunt is forced by delivering the first byte apart. Frames are valid reads, or random
    bytes of the expected length, with the byte count, address, function or CRC tampered.
    """
    body, is_frame = payload
    buffer = bytearray(rtu.encode_frame(unit_id, body) if is_frame else body)
    if tamper and len(buffer) > tamper:
        buffer[tamper] ^= 0x01
    data = bytes(buffer)
    expected_count = data[2] if is_frame and len(data) > 2 and tamper != 2 else byte_count
    one_read = _outcome(RTUResponseDecoder(unit_id, 3, expected_byte_count=expected_count), [data])
    hunted = _outcome(
        RTUResponseDecoder(unit_id, 3, expected_byte_count=expected_count), [data[:1], data[1:]]
    )
    assert one_read == hunted


def test_rtu_one_read_of_the_expected_answer():
    frame = rtu.encode_frame(0x11, b"\x03\x04\x00\x01\x00\x02")
    assert RTUResponseDecoder(0x11, 3, expected_byte_count=4).feed(frame) == frame[1:-2]
