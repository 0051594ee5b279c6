"""``panelhub firmware`` as a release manager and an integrator run it: real processes, a real
wheel of this tree, keys on disk."""

from __future__ import annotations

import asyncio
import os
import sys
import zipfile
from pathlib import Path

from tests.cli.test_audit import panelhub


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
