"""``panelhub firmware`` as a release manager and an integrator run it: real processes, a real
wheel of this tree, keys on disk."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.version import Version

from panelhub.security import bundle
from tests.cli.test_audit import panelhub
from tests.security.devicestate import provision


async def keygen(tmp_path: Path, name: str = "release.key") -> Path:
    code, out, err = await panelhub("firmware", "keygen", name, cwd=tmp_path)
    assert code == 0, err
    assert "key ID" in out
    return tmp_path / name


async def test_keygen_writes_a_private_key_only_its_owner_reads_and_a_public_key(tmp_path: Path):
    key = await keygen(tmp_path)
    assert key.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()
    assert b"PUBLIC KEY" in (tmp_path / "release.key.pub").read_bytes()


async def test_keygen_never_overwrites_a_key(tmp_path: Path):
    key = await keygen(tmp_path)
    before = key.read_bytes()
    code, _, err = await panelhub("firmware", "keygen", "release.key", cwd=tmp_path)
    assert code == 1
    assert "exists" in err
    assert key.read_bytes() == before


async def test_keygen_refuses_to_put_a_signing_key_in_the_data_directory(tmp_path: Path):
    (tmp_path / "var").mkdir()
    code, _, err = await panelhub("firmware", "keygen", "var/release.key", cwd=tmp_path)
    assert code == 1
    assert "inside the data directory" in err
    assert not (tmp_path / "var" / "release.key").exists()


async def test_a_signed_wheel_verifies_against_the_device_trust_anchors(
    tmp_path: Path, panelhub_wheel: Path
):
    key = await keygen(tmp_path)
    code, out, err = await panelhub(
        "firmware", "sign", "--wheel", str(panelhub_wheel), "--key", str(key), "-o", "update.phb",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    with zipfile.ZipFile(panelhub_wheel) as wheel:
        shipped = [n for n in wheel.namelist() if not n.endswith("/")]
    assert f"{len(shipped)} files" in out

    code, _, err = await panelhub("firmware", "verify", "update.phb", cwd=tmp_path)
    assert code == 1  # no trust anchor yet
    assert "no trust anchor" in err

    code, out, _ = await panelhub("firmware", "trust", "add", "release.key.pub", cwd=tmp_path)
    assert code == 0
    assert (tmp_path / "var" / "trust").stat().st_mode & 0o777 == 0o700
    code, out, err = await panelhub("firmware", "verify", "update.phb", cwd=tmp_path)
    assert code == 0, err
    assert "good signature" in out
    assert f"{len(shipped)} files" in out


async def test_verify_names_a_wrong_key_and_an_altered_byte(tmp_path: Path, panelhub_wheel: Path):
    key = await keygen(tmp_path)
    await keygen(tmp_path, "other.key")
    code, _, _ = await panelhub("firmware", "sign", "--wheel", str(panelhub_wheel), "--key",
                                str(key), "-o", "update.phb", cwd=tmp_path)  # fmt: skip
    assert code == 0
    code, _, err = await panelhub("firmware", "verify", "update.phb", "--key", "other.key.pub",
                                  cwd=tmp_path)  # fmt: skip
    assert (code, "wrong signature" in err) == (1, True)

    data = bytearray((tmp_path / "update.phb").read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "altered.phb").write_bytes(bytes(data))
    code, _, err = await panelhub("firmware", "verify", "altered.phb", "--key", "release.key.pub",
                                  cwd=tmp_path)  # fmt: skip
    assert code == 1
    assert "altered payload" in err


async def test_sign_refuses_a_private_key_others_can_read(tmp_path: Path, panelhub_wheel: Path):
    key = await keygen(tmp_path)
    key.chmod(0o644)
    code, _, err = await panelhub("firmware", "sign", "--wheel", str(panelhub_wheel), "--key",
                                  str(key), "-o", "update.phb", cwd=tmp_path)  # fmt: skip
    assert code == 1
    assert "chmod 600" in err
    assert not (tmp_path / "update.phb").exists()


async def test_two_signatures_of_the_same_build_at_the_same_date_are_identical(
    tmp_path: Path, panelhub_wheel: Path
):
    key = await keygen(tmp_path)
    environment = {**os.environ, "SOURCE_DATE_EPOCH": "1795000000"}
    outputs = []
    for name in ("a.phb", "b.phb"):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "panelhub", "firmware", "sign", "--wheel", str(panelhub_wheel),
            "--key", str(key), "-o", name, cwd=tmp_path, env=environment,
        )  # fmt: skip
        assert await process.wait() == 0
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]  # Ed25519 signatures are deterministic (RFC 8032)


async def test_install_refuses_a_random_file_and_a_downgrade_audits_them_and_writes_nothing(
    tmp_path: Path, panelhub_wheel: Path
):
    state = await asyncio.to_thread(provision, tmp_path / "device")
    key = await keygen(tmp_path)
    code, _, _ = await panelhub("firmware", "trust", "add", "release.key.pub", "--data-dir",
                                str(state.data_dir), cwd=tmp_path)  # fmt: skip
    assert code == 0
    (tmp_path / "random.bin").write_bytes(os.urandom(100_000))
    slots_dir = tmp_path / "slots"
    code, _, err = await panelhub("firmware", "install", "random.bin", "--slots", str(slots_dir),
                                  "--data-dir", str(state.data_dir), cwd=tmp_path)  # fmt: skip
    assert code == 1
    assert "wrong signature" in err
    assert not slots_dir.exists() or not any(slots_dir.iterdir())

    code, _, _ = await panelhub("firmware", "sign", "--wheel", str(panelhub_wheel), "--key",
                                str(key), "-o", "update.phb", cwd=tmp_path)  # fmt: skip
    assert code == 0
    slots_dir.mkdir(exist_ok=True)  # a device whose current slot is version 99.0
    fake_current = slots_dir / "slot-99.0-000000000000"
    fake_current.mkdir()
    (fake_current / "bundle-header").write_bytes(_header_of_version("99.0"))
    (slots_dir / "current").symlink_to(fake_current.name)
    code, _, err = await panelhub("firmware", "install", "update.phb", "--slots", str(slots_dir),
                                  "--data-dir", str(state.data_dir), cwd=tmp_path)  # fmt: skip
    assert code == 1
    assert "older than installed" in err
    assert not (slots_dir / "trial").exists()
    with sqlite3.connect(state.data_dir / "state.sqlite") as connection:
        rows = connection.execute(
            "SELECT event, outcome, details FROM audit_record WHERE event LIKE 'firmware.%'"
        ).fetchall()
    assert [(event, outcome) for event, outcome, _ in rows] == [
        ("firmware.rejected", "failure")
    ] * 2
    assert "wrong signature" in rows[0][2]
    assert "older than installed" in rows[1][2]


def _header_of_version(version: str) -> bytes:
    """A current slot's header saying ``version`` (its signature is not read for the version)."""
    data = bundle.make_bundle({"panelhub/__init__.py": b""}, Ed25519PrivateKey.generate(),
                              version=Version(version), min_version=Version("0"),
                              build_date="2026-11-29T00:00:00Z")  # fmt: skip
    manifest = bundle.manifest_of_header(data)
    return data[: len(data) - manifest.payload_size]
