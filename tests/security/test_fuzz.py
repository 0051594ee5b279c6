"""A fixed-budget fuzz run of the bundle and backup parsers: whatever the bytes, the answer is
a result or one of our declared errors, never a crash.

The mutations reach past the signature and the encryption on purpose: each mutated payload,
manifest or backup content is signed (or handed over decrypted) as a trusted build machine or
a right password would, so the archive, JSON and settings parsers behind those gates are the
ones fuzzed. The budget is the number of examples per test (``FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from panelhub.devices.catalog import custom_model_id
from panelhub.errors import BackupError, BundleError
from panelhub.security import backup, bundle, restore

FUZZ_EXAMPLES = 400
KEY = Ed25519PrivateKey.generate()
TRUSTED = [KEY.public_key()]
FILES = {
    "panelhub/__init__.py": b'"""PanelHub."""\n',
    "panelhub/data/table.csv": b"a,b\n1,2\n" * 40,
    "panelhub-0.2.0.dist-info/METADATA": b"Name: panelhub\nVersion: 0.2.0\n",
}
GOOD = bundle.make_bundle(FILES, KEY, version=Version("0.2.0"), min_version=Version("0"),
                          build_date="2026-11-29T05:00:00Z")  # fmt: skip
_MANIFEST = bundle.manifest_of_header(GOOD)
GOOD_PAYLOAD = GOOD[len(GOOD) - _MANIFEST.payload_size :]
GOOD_MANIFEST = bundle.manifest_bytes(_MANIFEST)
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few byte-level changes: flips, overwrites, cuts, insertions."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "truncate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(
                st.sampled_from([0, 0x2F, 0x2E, 0x30, 0x35, 0xFF, ord('"'), ord("{")])
            )
        elif kind == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=32))
        else:
            del data[position:]
    return bytes(data)


def signed(manifest_json: bytes, payload: bytes) -> bytes:
    return bundle.signed_header(manifest_json, KEY) + payload


def check_bundle(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.phb"
    path.write_bytes(data)
    with contextlib.suppress(BundleError):
        bundle.verify_bundle(path, TRUSTED, installed=Version("0.1.0"))


@FUZZ
@given(payload=mutated(GOOD_PAYLOAD))
def test_a_signed_bundle_with_any_payload_is_accepted_or_refused_cleanly(
    tmp_path: Path, payload: bytes
) -> None:
    doc = json.loads(GOOD_MANIFEST)
    doc["payload"] = {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    check_bundle(tmp_path, signed(json.dumps(doc).encode(), payload))


@FUZZ
@given(manifest=mutated(GOOD_MANIFEST))
def test_a_signed_bundle_with_any_manifest_is_accepted_or_refused_cleanly(
    tmp_path: Path, manifest: bytes
) -> None:
    check_bundle(tmp_path, signed(manifest, GOOD_PAYLOAD))


@FUZZ
@given(data=mutated(GOOD))
def test_any_change_to_a_whole_bundle_is_refused_cleanly(tmp_path: Path, data: bytes) -> None:
    check_bundle(tmp_path, data)


def _backup_contents() -> bytes:
    members = {
        "config.toml": b'timezone = "Europe/Paris"\n',
        "accounts.json": json.dumps(
            [
                {
                    "name": "admin",
                    "role": "admin",
                    "password_hash": "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA",
                    "is_enabled": 1,
                    "must_change_password": 0,
                    "created_at": "2026-11-29T00:00:00Z",
                    "password_changed_at": None,
                }
            ]
        ).encode(),
        "audit-key": bytes(32),
    }
    return restore.tar_members(members)


GOOD_CONTENTS = _backup_contents()
GOOD_BACKUP = backup.seal(GOOD_CONTENTS, "Fuzz#Pass1", product_version="0.1.0",
                          now=dt.datetime(2026, 11, 29, tzinfo=dt.UTC))  # fmt: skip


def test_the_unmutated_inputs_are_accepted() -> None:
    """The fuzzed parsers do accept what they are given before it is mutated."""
    snapshot = restore.parse(GOOD_CONTENTS, model_id_of=custom_model_id)
    assert [account["name"] for account in snapshot.accounts] == ["admin"]
    assert backup.read_header(GOOD_BACKUP)[0].product_version == "0.1.0"


@FUZZ
@given(contents=mutated(GOOD_CONTENTS))
def test_any_decrypted_backup_contents_are_restored_or_refused_cleanly(contents: bytes) -> None:
    with contextlib.suppress(BackupError):
        restore.parse(contents, model_id_of=custom_model_id)


@FUZZ
@given(data=mutated(GOOD_BACKUP))
def test_any_backup_header_is_read_or_refused_cleanly(data: bytes) -> None:
    with contextlib.suppress(BackupError):
        backup.read_header(data)
