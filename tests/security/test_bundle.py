"""Update bundles: a good one is accepted and unpacked as signed; everything else is refused
with its reason, before a byte is written."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from panelhub.errors import BundleError
from panelhub.security import bundle

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
TRUSTED = [KEY.public_key()]
FILES = {
    "panelhub/__init__.py": b'"""PanelHub."""\n',
    "panelhub/security/data/common-passwords.txt": b"123456\npassword\n",
    "panelhub-0.2.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: panelhub\nVersion: 0.2.0\n",
}


def make(
    files: dict[str, bytes] | None = None,
    *,
    key: Ed25519PrivateKey = KEY,
    version: str = "0.2.0",
    min_version: str = "0.1.0",
) -> bytes:
    return bundle.make_bundle(
        FILES if files is None else files,
        key,
        version=Version(version),
        min_version=Version(min_version),
        build_date="2026-11-29T05:00:00Z",
    )


def write(tmp_path: Path, data: bytes, name: str = "update.phb") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refusal(path: Path, *, installed: str = "0.1.0") -> BundleError:
    with pytest.raises(BundleError) as caught:
        bundle.verify_bundle(path, TRUSTED, installed=Version(installed))
    return caught.value


def signed_with_payload(
    members: list[tuple[tarfile.TarInfo, bytes]], listed: dict[str, bytes]
) -> bytes:
    """A bundle signed by the trusted key whose payload is the given raw tar members: what a
    careless or subverted build machine could produce."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    payload = out.getvalue()
    manifest = {
        "product": "panelhub",
        "version": "0.2.0",
        "min_version": "0.1.0",
        "build_date": "2026-11-29T05:00:00Z",
        "payload": {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()},
        "files": [
            {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in listed.items()
        ],
    }
    return bundle.signed_header(json.dumps(manifest).encode(), KEY) + payload


def member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    return info, data


def test_a_good_bundle_is_verified_and_unpacks_to_the_signed_files(tmp_path: Path) -> None:
    verified = bundle.verify_bundle(write(tmp_path, make()), TRUSTED, installed=Version("0.1.0"))

    assert verified.manifest.version == Version("0.2.0")
    assert verified.header.key_id == bundle.key_id(KEY.public_key())
    slot = tmp_path / "slot"
    bundle.unpack(verified, slot)
    found = {p.relative_to(slot).as_posix(): p.read_bytes() for p in slot.rglob("*") if p.is_file()}
    assert found == FILES
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in slot.rglob("*") if p.is_file())


def test_a_random_file_is_refused_as_a_wrong_signature(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, os.urandom(4096)))
    assert error.reason == "wrong signature"


def test_a_bundle_signed_by_an_untrusted_key_is_refused(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, make(key=OTHER_KEY)))
    assert error.reason == "wrong signature"
    assert "no trusted key" in str(error)


def test_a_bundle_is_refused_with_no_trust_anchor_at_all(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="wrong signature"):
        bundle.verify_bundle(write(tmp_path, make()), [], installed=None)


def test_an_older_version_is_refused_and_the_same_one_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, make(version="0.2.0"))
    error = refusal(path, installed="0.3.0")
    assert error.reason == "older than installed"
    assert "0.2.0" in str(error)
    assert "0.3.0" in str(error)
    bundle.verify_bundle(path, TRUSTED, installed=Version("0.2.0"))  # a reinstall


def test_a_bundle_that_needs_a_newer_installed_version_is_refused(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, make(min_version="0.1.5")), installed="0.1.0")
    assert error.reason == "installed version too old for this bundle"


def test_a_file_larger_than_any_bundle_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.phb"
    with path.open("wb") as file:
        file.write(make()[:100])
        file.truncate(bundle.MAX_BUNDLE_BYTES + 1)  # sparse: nothing to read, just the size
    assert refusal(path).reason == "too large"


def test_trailing_bytes_after_the_payload_are_refused(tmp_path: Path) -> None:
    assert refusal(write(tmp_path, make() + b"\0")).reason == "altered payload"


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("/etc/cron.d/evil", tarfile.REGTYPE, "unsafe archive entry"),
        ("panelhub/../../evil.py", tarfile.REGTYPE, "unsafe archive entry"),
        ("panelhub/link", tarfile.SYMTYPE, "unsafe archive entry"),
        ("panelhub/hardlink", tarfile.LNKTYPE, "unsafe archive entry"),
        ("panelhub/sda", tarfile.BLKTYPE, "unsafe archive entry"),
        ("panelhub/fifo", tarfile.FIFOTYPE, "unsafe archive entry"),
    ],
)
def test_an_unsafe_archive_entry_is_refused_even_under_a_good_signature(
    tmp_path: Path, name: str, kind: bytes, reason: str
) -> None:
    data = signed_with_payload(
        [
            member("panelhub/__init__.py", b"x"),
            member(name, b"evil" if kind == tarfile.REGTYPE else b"", kind),
        ],
        {"panelhub/__init__.py": b"x"},
    )
    error = refusal(write(tmp_path, data))
    assert error.reason == reason


def test_a_file_in_the_payload_but_not_in_the_manifest_is_refused(tmp_path: Path) -> None:
    data = signed_with_payload(
        [member("panelhub/__init__.py", b"x"), member("panelhub/extra.py", b"y")],
        {"panelhub/__init__.py": b"x"},
    )
    error = refusal(write(tmp_path, data))
    assert error.reason == "altered payload"
    assert "extra.py" in str(error)


def test_a_file_in_the_manifest_but_not_in_the_payload_is_refused(tmp_path: Path) -> None:
    data = signed_with_payload(
        [member("panelhub/__init__.py", b"x")], {"panelhub/__init__.py": b"x", "panelhub/a.py": b""}
    )
    assert "a.py" in str(refusal(write(tmp_path, data)))


def test_a_file_whose_content_differs_from_its_manifest_entry_is_refused(tmp_path: Path) -> None:
    data = signed_with_payload(
        [member("panelhub/__init__.py", b"y")], {"panelhub/__init__.py": b"x"}
    )
    error = refusal(write(tmp_path, data))
    assert error.reason == "altered payload"
    assert "SHA-256" in str(error)


def test_a_manifest_entry_larger_than_a_file_may_be_is_refused(tmp_path: Path) -> None:
    manifest = json.loads(
        bundle.manifest_bytes(
            bundle.Manifest(
                product="panelhub",
                version=Version("0.2.0"),
                min_version=Version("0"),
                build_date="x",
                payload_size=0,
                payload_sha256="0" * 64,
                files=(bundle.FileEntry("panelhub/big.bin", 1, "0" * 64),),
            )
        )
    )
    manifest["files"][0]["size"] = bundle.MAX_FILE_BYTES + 1
    data = bundle.signed_header(json.dumps(manifest).encode(), KEY)
    assert refusal(write(tmp_path, data)).reason == "too large"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_mutation_of_a_good_bundle_is_accepted(tmp_path: Path, data: st.DataObject) -> None:
    good = make()
    mutation = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
    position = data.draw(st.integers(0, len(good) - 1))
    if mutation == "flip":
        bit = data.draw(st.integers(0, 7))
        mutated = good[:position] + bytes([good[position] ^ (1 << bit)]) + good[position + 1 :]
    elif mutation == "truncate":
        mutated = good[:position]
    elif mutation == "insert":
        mutated = good[:position] + data.draw(st.binary(min_size=1, max_size=8)) + good[position:]
    else:
        mutated = good[:position] + good[position + 1 :]
    path = write(tmp_path, mutated, "mutated.phb")
    with pytest.raises(BundleError):
        bundle.verify_bundle(path, TRUSTED, installed=Version("0.1.0"))


def test_unpack_catches_a_bundle_changed_after_it_was_verified(tmp_path: Path) -> None:
    path = write(tmp_path, make())
    verified = bundle.verify_bundle(path, TRUSTED, installed=Version("0.1.0"))
    good = path.read_bytes()
    index = good.rindex(b"123456")  # inside the payload: same length, other content
    path.write_bytes(good[:index] + b"654321" + good[index + 6 :])
    with pytest.raises(BundleError, match="SHA-256"):
        bundle.unpack(verified, tmp_path / "slot")


def test_a_signed_archive_cut_inside_a_file_is_refused_as_altered(tmp_path: Path) -> None:
    """Found by the fuzz run: the archive ends in the middle of a member's data."""
    whole = bundle.build_payload({"panelhub/__init__.py": b"x" * 2000}, mtime=0)
    cut = whole[: 512 + 1000]  # the header block, then half the file
    manifest = {
        "product": "panelhub", "version": "0.2.0", "min_version": "0.1.0", "build_date": "x",
        "payload": {"size": len(cut), "sha256": hashlib.sha256(cut).hexdigest()},
        "files": [{"path": "panelhub/__init__.py", "size": 2000,
                   "sha256": hashlib.sha256(b"x" * 2000).hexdigest()}],
    }  # fmt: skip
    data = bundle.signed_header(json.dumps(manifest).encode(), KEY) + cut
    error = refusal(write(tmp_path, data))
    assert error.reason == "altered payload"


@pytest.mark.parametrize(
    ("listed", "reason"),
    [
        ({"sitecustomize.py": b"import os\n"}, "unsafe archive entry"),
        ({"json/__init__.py": b""}, "unsafe archive entry"),
        ({"panelhub/a": b"", "panelhub/a/b.py": b""}, "invalid manifest"),
    ],
)
def test_a_signed_manifest_outside_the_package_layout_is_refused(
    tmp_path: Path, listed: dict[str, bytes], reason: str
) -> None:
    """Files at the top of a slot would run at start-up or shadow the standard library."""
    data = signed_with_payload([member(name, content) for name, content in listed.items()], listed)
    assert refusal(write(tmp_path, data)).reason == reason


def test_a_signed_manifest_nested_thousands_deep_is_refused(tmp_path: Path) -> None:
    data = bundle.signed_header(b"[" * 5000, KEY)
    assert refusal(write(tmp_path, data)).reason == "invalid manifest"
