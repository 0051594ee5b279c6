"""Signing keys, trust anchors, and the files an update bundle carries.

Who trusts what: a device accepts a bundle signed by one of its trust anchors, the Ed25519
public keys in ``<data dir>/trust/`` (the owner adds their own, SECURITY.md "Software
integrity") and any shipped in the package's ``security/data/trust/`` (a release build puts
its public key there; a factory reset, which empties the data directory, keeps those). The
private key never goes near a device: ``keygen`` refuses to write it inside a data directory.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from packaging.version import InvalidVersion, Version

from panelhub.errors import BundleError
from panelhub.security import bundle, fileset

TRUST_DIR: Final = "trust"
TRUST_DIR_MODE: Final = 0o700
PRIVATE_KEY_MODE: Final = 0o600
PUBLIC_KEY_MODE: Final = 0o644
#: A PEM public key is under 200 bytes; anything larger is not one.
MAX_KEY_FILE_BYTES: Final = 16 * 1024
#: Bytecode caches are made on the device by Python itself: never shipped, never checked.
_SKIPPED_PARTS: Final = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo")
_DIST_INFO: Final = re.compile(r"panelhub-([^/]+)\.dist-info")


class KeyFileError(BundleError):
    """A key file that cannot be read, written or used."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="unusable key")


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    key: Ed25519PublicKey
    key_id: str
    #: Where it came from: a file of the data directory, or "built-in".
    source: str


# --- keys ----------------------------------------------------------------------------------


def generate_key(path: Path, *, data_dir: Path | None = None) -> str:
    """Write a new private key (0600) to ``path`` and its public key to ``path.pub``.

    Returns the key's ID. Refuses to overwrite a file, and to write inside ``data_dir``: a
    device holding the key that signs its updates would accept anything an intruder signs.
    """
    if data_dir is not None and path.resolve().is_relative_to(data_dir.resolve()):
        raise KeyFileError(
            f"{path} is inside the data directory {data_dir}: keep signing keys off devices"
        )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    _write_new(path, private_pem, PRIVATE_KEY_MODE)
    _write_new(public_path(path), public_pem, PUBLIC_KEY_MODE)
    return bundle.key_id(key.public_key())


def public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """``fileset.write_synced`` (exclusive, exact mode, fsynced), its errors as ours."""
    try:
        fileset.write_synced(path, data, mode)
    except FileExistsError:
        raise KeyFileError(
            f"{path} exists: choose another name, keys are never overwritten"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None
    if path.stat().st_mode & 0o077:
        raise KeyFileError(
            f"{path} can be read by others (mode {path.stat().st_mode & 0o777:o}): chmod 600 it"
        )
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(data: bytes, *, source: str) -> Ed25519PublicKey:
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{source} is too large to be a public key")
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileError(f"{source} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{source} is not an Ed25519 public key")
    return key


# --- trust anchors -------------------------------------------------------------------------


def trust_anchors(data_dir: Path) -> tuple[TrustAnchor, ...]:
    """The built-in anchors, then the owner's.

    A damaged file is skipped, not fatal: the others still verify, and ``panelhub firmware
    trust list`` shows what is trusted.
    """
    anchors = [TrustAnchor(key, bundle.key_id(key), "built-in") for key in _builtin_keys()]
    directory = data_dir / TRUST_DIR
    if directory.is_dir():
        for path in sorted(directory.glob("*.pem")):
            try:
                key = load_public_key(path.read_bytes(), source=str(path))
            except (KeyFileError, OSError):
                continue
            anchors.append(TrustAnchor(key, bundle.key_id(key), str(path)))
    return tuple(anchors)


def _builtin_keys() -> list[Ed25519PublicKey]:
    root = resources.files("panelhub.security").joinpath("data", "trust")
    if not root.is_dir():
        return []
    return [
        load_public_key(item.read_bytes(), source=item.name)
        for item in sorted(root.iterdir(), key=lambda item: item.name)
        if item.name.endswith(".pem")
    ]


def add_trust_anchor(data_dir: Path, public_pem: bytes, *, source: str) -> TrustAnchor:
    """Add an owner's public key; returns it (adding a key already there is not an error)."""
    key = load_public_key(public_pem, source=source)
    ident = bundle.key_id(key)
    directory = data_dir / TRUST_DIR
    directory.mkdir(mode=TRUST_DIR_MODE, parents=True, exist_ok=True)
    target = directory / f"{ident}.pem"
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    if not target.exists():
        temporary = directory / f".{ident}.pem.new"
        temporary.unlink(missing_ok=True)
        _write_new(temporary, pem, PUBLIC_KEY_MODE)
        temporary.replace(target)
    return TrustAnchor(key, ident, str(target))


# --- what a bundle carries -----------------------------------------------------------------


def files_of_wheel(wheel: Path) -> dict[str, bytes]:
    """The files a wheel installs (it is a zip laid out as ``site-packages``)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir() and _is_shipped(info.filename)
            }
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(
            f"cannot read the wheel {wheel}: {exc}", reason="unreadable wheel"
        ) from None


def files_of_tree(root: Path) -> dict[str, bytes]:
    """The files under ``root`` (a ``site-packages``-like tree with ``panelhub/``)."""
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if not _is_shipped(name):
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BundleError(
                f"{name} is a link or a special file: a bundle holds plain files",
                reason=bundle.UNSAFE_ENTRY,
            )
        if path.is_file():
            files[name] = path.read_bytes()
    return files


def _is_shipped(name: str) -> bool:
    parts = name.split("/")
    return not (_SKIPPED_PARTS & set(parts)) and not name.endswith(_SKIPPED_SUFFIXES)


def version_of(files: Mapping[str, bytes]) -> Version:
    """The version in the payload's ``panelhub-X.dist-info``: what the code will report."""
    for name in files:
        found = _DIST_INFO.match(name)
        if found and name.endswith("/METADATA"):
            for line in files[name].decode("utf-8", "replace").splitlines():
                if line.startswith("Version:"):
                    try:
                        return Version(line.removeprefix("Version:").strip())
                    except InvalidVersion:
                        break
    raise BundleError(
        "the files hold no panelhub-*.dist-info/METADATA with a version", reason=bundle.BAD_MANIFEST
    )


def sign_files(
    files: Mapping[str, bytes], key: Ed25519PrivateKey, *, min_version: Version, now: dt.datetime
) -> bytes:
    """A bundle of ``files`` with the version their metadata gives."""
    if "panelhub/__init__.py" not in files:
        raise BundleError(
            "the files hold no panelhub/__init__.py: not a PanelHub build",
            reason=bundle.BAD_MANIFEST,
        )
    version = version_of(files)
    if min_version > version:
        raise BundleError(
            f"the minimum version {min_version} is newer than the bundle's {version}",
            reason=bundle.BAD_MANIFEST,
        )
    build_date = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return bundle.make_bundle(
        files,
        key,
        version=version,
        min_version=min_version,
        build_date=build_date,
        mtime=int(now.timestamp()),
    )
