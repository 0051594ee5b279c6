r"""Signed update bundles: the format, and every check a bundle passes before it is unpacked.

A bundle is one file (all integers big-endian)::

    offset   size  field
    0        16    magic  b"PANELHUB-BUNDLE\n"
    16       2     format version (1)
    18       4     manifest length M (at most MAX_MANIFEST_BYTES)
    22       M     manifest: UTF-8 JSON (below)
    22+M     64    Ed25519 signature of bytes 0 .. 22+M (magic, version, length, manifest)
    86+M     P     payload: a POSIX tar archive of exactly P = manifest.payload.size bytes

The manifest names the product, the version, the oldest installed version it may replace, the
build date, the payload's size and SHA-256, and every file of the payload with its size and
SHA-256::

    {"product": "panelhub", "version": "0.2.0", "min_version": "0.1.0",
     "build_date": "2026-11-29T05:00:00Z",
     "payload": {"size": 40960, "sha256": "9f86d0..."},
     "files": [{"path": "panelhub/__init__.py", "size": 321, "sha256": "2c26b4..."}, ...]}

The payload is what a wheel installs: the ``panelhub`` package and its ``.dist-info``, laid out
as in ``site-packages``. The signed header (bytes 0 .. 86+M) is kept beside an installed copy,
so the start-up check (``integrity.py``) verifies the code against the same signature.

Why this order of checks: the signature is checked on the small header before the payload is
read, so a random or altered file costs one read of 86+M bytes; the payload is then hashed as
one stream and compared with the signed digest, so no byte of the archive is interpreted before
it is known to come from a trusted key; the archive's entries are checked last, as a second
line (a trusted key can still sign a careless tree). Nothing is written anywhere until all of
it has passed (``unpack`` re-hashes each file as it writes it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import struct
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from packaging.version import InvalidVersion, Version

from panelhub.errors import BundleError

MAGIC: Final = b"PANELHUB-BUNDLE\n"
FORMAT_VERSION: Final = 1
_PREFIX: Final = struct.Struct(">16sHI")
SIGNATURE_BYTES: Final = 64  # Ed25519 (RFC 8032 §5.1.6)
PRODUCT: Final = "panelhub"
#: A file entry is about 150 bytes of JSON: room for 20,000 files, and a bound on what is
#: parsed before the signature is known good.
MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
#: The whole bundle: PanelHub's wheel is under 2 MiB; this leaves room for a tree with
#: vendored data, and bounds an upload the maintenance page accepts.
MAX_BUNDLE_BYTES: Final = 256 * 1024 * 1024
#: One file of the payload, and how many: an archive "bomb" stops here.
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
MAX_FILES: Final = 20_000
#: A path in the payload: portable names only (no spaces, no backslash, no control bytes).
MAX_PATH_CHARS: Final = 240
_NAME_PART: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_DIST_INFO: Final = re.compile(r"panelhub-[A-Za-z0-9_.+!-]+\.dist-info")
_CHUNK: Final = 1024 * 1024

# The fixed reasons the maintenance page and the audit log show.
WRONG_SIGNATURE: Final = "wrong signature"
TRUNCATED: Final = "truncated file"
TOO_LARGE: Final = "too large"
OLDER: Final = "older than installed"
NEEDS_NEWER: Final = "installed version too old for this bundle"
WRONG_PRODUCT: Final = "not a PanelHub bundle"
BAD_MANIFEST: Final = "invalid manifest"
ALTERED: Final = "altered payload"
UNSAFE_ENTRY: Final = "unsafe archive entry"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    product: str
    version: Version
    min_version: Version
    build_date: str
    payload_size: int
    payload_sha256: str
    files: tuple[FileEntry, ...]

    def file_map(self) -> dict[str, FileEntry]:
        return {entry.path: entry for entry in self.files}


@dataclass(frozen=True, slots=True)
class SignedHeader:
    """The header of a bundle whose signature a trusted key made."""

    manifest: Manifest
    #: Bytes 0 .. end of the signature, exactly as read: kept beside installed code.
    raw: bytes
    key_id: str


@dataclass(frozen=True, slots=True)
class VerifiedBundle:
    """A bundle file that passed every check; ``unpack`` may now write it out."""

    path: Path
    header: SignedHeader

    @property
    def manifest(self) -> Manifest:
        return self.header.manifest


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name for a key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_version(text: object, *, field: str) -> Version:
    if not isinstance(text, str):
        raise BundleError(f"manifest field {field!r} is not a version", reason=BAD_MANIFEST)
    try:
        return Version(text)
    except InvalidVersion:
        raise BundleError(
            f"manifest field {field!r}: {text!r} is not a version", reason=BAD_MANIFEST
        ) from None


# --- reading -------------------------------------------------------------------------------


def read_signed_header(
    stream: IO[bytes], trusted: Iterable[Ed25519PublicKey], *, file_size: int
) -> SignedHeader:
    """Read and check the header at the start of ``stream``: magic, lengths, signature, manifest."""
    if file_size > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"the file is {file_size} bytes, more than a bundle may be ({MAX_BUNDLE_BYTES})",
            reason=TOO_LARGE,
        )
    prefix = stream.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size or not prefix.startswith(MAGIC[: len(prefix)]):
        raise BundleError(
            f"{WRONG_SIGNATURE}: the file is not a signed PanelHub bundle", reason=WRONG_SIGNATURE
        )
    magic, fmt, manifest_len = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise BundleError(
            f"{WRONG_SIGNATURE}: the file is not a signed PanelHub bundle", reason=WRONG_SIGNATURE
        )
    if fmt != FORMAT_VERSION:
        raise BundleError(
            f"bundle format {fmt} is not known to this version (it reads {FORMAT_VERSION})",
            reason=BAD_MANIFEST,
        )
    if manifest_len > MAX_MANIFEST_BYTES:
        raise BundleError(
            f"the manifest is {manifest_len} bytes, more than {MAX_MANIFEST_BYTES}",
            reason=TOO_LARGE,
        )
    rest = stream.read(manifest_len + SIGNATURE_BYTES)
    if len(rest) < manifest_len + SIGNATURE_BYTES:
        raise BundleError(f"{TRUNCATED}: the file ends inside its header", reason=TRUNCATED)
    signed, signature = prefix + rest[:manifest_len], rest[manifest_len:]
    signer = _signer(signed, signature, trusted)
    manifest = parse_manifest(rest[:manifest_len])
    return SignedHeader(manifest=manifest, raw=signed + signature, key_id=signer)


def manifest_of_header(raw: bytes) -> Manifest:
    """The manifest of a header verified before (an installed slot's); no signature check."""
    if len(raw) < _PREFIX.size:
        raise BundleError(f"{TRUNCATED}: a header of {len(raw)} bytes", reason=TRUNCATED)
    magic, _, manifest_len = _PREFIX.unpack_from(raw)
    if magic != MAGIC or len(raw) < _PREFIX.size + manifest_len:
        raise BundleError(f"{TRUNCATED}: not a whole bundle header", reason=TRUNCATED)
    return parse_manifest(raw[_PREFIX.size : _PREFIX.size + manifest_len])


def _signer(signed: bytes, signature: bytes, trusted: Iterable[Ed25519PublicKey]) -> str:
    for key in trusted:
        try:
            key.verify(signature, signed)
        except InvalidSignature:
            continue
        return key_id(key)
    raise BundleError(
        f"{WRONG_SIGNATURE}: no trusted key made this bundle's signature", reason=WRONG_SIGNATURE
    )


def parse_manifest(data: bytes) -> Manifest:
    """The manifest's JSON, checked field by field (it is signed, but still read strictly)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BundleError(f"the manifest is not JSON: {exc}", reason=BAD_MANIFEST) from None
    if not isinstance(doc, dict):
        raise BundleError("the manifest is not a JSON object", reason=BAD_MANIFEST)
    payload = _field(doc, "payload", dict)
    files = _field(doc, "files", list)
    if len(files) > MAX_FILES:
        raise BundleError(
            f"the manifest lists {len(files)} files, more than {MAX_FILES}", reason=TOO_LARGE
        )
    entries = tuple(_file_entry(item) for item in files)
    paths = {entry.path for entry in entries}
    if len(paths) != len(entries):
        raise BundleError("the manifest lists a file twice", reason=BAD_MANIFEST)
    for path in paths:
        parts = path.split("/")
        clash = next(
            ("/".join(parts[:n]) for n in range(1, len(parts)) if "/".join(parts[:n]) in paths),
            None,
        )
        if clash is not None:
            raise BundleError(
                f"the manifest lists {clash!r} as a file and as a folder", reason=BAD_MANIFEST
            )
    return Manifest(
        product=_field(doc, "product", str),
        version=parse_version(doc.get("version"), field="version"),
        min_version=parse_version(doc.get("min_version"), field="min_version"),
        build_date=_field(doc, "build_date", str),
        payload_size=_size(_field(payload, "size", int), MAX_BUNDLE_BYTES),
        payload_sha256=_digest(_field(payload, "sha256", str)),
        files=entries,
    )


def _field(doc: Mapping[str, Any], name: str, kind: type) -> Any:  # noqa: ANN401 - JSON
    value = doc.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleError(
            f"manifest field {name!r} is missing or not a {kind.__name__}", reason=BAD_MANIFEST
        )
    return value


def _size(value: int, limit: int) -> int:
    if value < 0:
        raise BundleError(f"a size of {value} bytes in the manifest", reason=BAD_MANIFEST)
    if value > limit:
        raise BundleError(f"{TOO_LARGE}: {value} bytes, more than {limit}", reason=TOO_LARGE)
    return value


def _digest(value: str) -> str:
    if not _HEX64.fullmatch(value):
        raise BundleError(
            f"{value!r} is not a SHA-256 digest in lower-case hex", reason=BAD_MANIFEST
        )
    return value


def check_layout(path: str) -> None:
    """Only the package and its metadata, nothing at the top of a slot.

    A file there (``sitecustomize.py``, a ``.pth``, a module named like one of the standard
    library's) would run at start-up or shadow other code.
    """
    top, _, rest = path.partition("/")
    if not rest or not (top == PRODUCT or _DIST_INFO.fullmatch(top)):
        raise BundleError(
            f"{UNSAFE_ENTRY}: {path!r} is outside panelhub/ and its .dist-info", reason=UNSAFE_ENTRY
        )


def _file_entry(item: object) -> FileEntry:
    if not isinstance(item, dict):
        raise BundleError("a file entry of the manifest is not an object", reason=BAD_MANIFEST)
    path = _field(item, "path", str)
    check_path(path)
    check_layout(path)
    return FileEntry(
        path=path,
        size=_size(_field(item, "size", int), MAX_FILE_BYTES),
        sha256=_digest(_field(item, "sha256", str)),
    )


def check_path(path: str) -> None:
    """Refuse a name that could land outside the slot, or that a file system would mangle."""
    parts = path.split("/")
    if (
        len(path) > MAX_PATH_CHARS
        or path.startswith("/")
        or not all(_NAME_PART.fullmatch(part) for part in parts)
        or ".." in parts
    ):
        raise BundleError(
            f"{UNSAFE_ENTRY}: {path!r} is absolute, has '..' or an unsafe name", reason=UNSAFE_ENTRY
        )


def check_versions(manifest: Manifest, *, installed: Version) -> None:
    if manifest.product != PRODUCT:
        raise BundleError(
            f"the bundle is for {manifest.product!r}, not {PRODUCT!r}", reason=WRONG_PRODUCT
        )
    if manifest.version < installed:
        raise BundleError(
            f"{OLDER}: the bundle holds {manifest.version}, {installed} is installed", reason=OLDER
        )
    if installed < manifest.min_version:
        raise BundleError(
            f"{NEEDS_NEWER}: the bundle replaces {manifest.min_version} or later, "
            f"{installed} is installed",
            reason=NEEDS_NEWER,
        )


def verify_bundle(
    path: Path, trusted: Iterable[Ed25519PublicKey], *, installed: Version | None
) -> VerifiedBundle:
    """Every check of a bundle file, reading it but writing nothing; raises ``BundleError``.

    ``installed`` is the running version, for the downgrade checks; None leaves them out
    (``panelhub firmware verify`` on a build machine).
    """
    try:
        file_size = path.stat().st_size
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}", reason=TRUNCATED) from None
    with path.open("rb") as stream:
        header = read_signed_header(stream, trusted, file_size=file_size)
        manifest = header.manifest
        if installed is not None:
            check_versions(manifest, installed=installed)
        elif manifest.product != PRODUCT:
            raise BundleError(
                f"the bundle is for {manifest.product!r}, not {PRODUCT!r}", reason=WRONG_PRODUCT
            )
        available = file_size - len(header.raw)
        if available < manifest.payload_size:
            raise BundleError(
                f"{TRUNCATED}: the payload has {available} of its {manifest.payload_size} bytes",
                reason=TRUNCATED,
            )
        if available > manifest.payload_size:
            raise BundleError(
                f"{ALTERED}: {available - manifest.payload_size} bytes after the payload",
                reason=ALTERED,
            )
        if _sha256_of(stream, manifest.payload_size) != manifest.payload_sha256:
            raise BundleError(
                f"{ALTERED}: the payload's SHA-256 is not the signed one", reason=ALTERED
            )
        stream.seek(len(header.raw))
        with archive_errors():
            for entry, content in _checked_members(stream, manifest):
                if _sha256_of(content, entry.size) != entry.sha256:
                    raise BundleError(
                        f"{ALTERED}: {entry.path!r} does not have its signed SHA-256",
                        reason=ALTERED,
                    )
    return VerifiedBundle(path=path, header=header)


@contextlib.contextmanager
def archive_errors() -> Iterator[None]:
    """``tarfile``'s errors as ours, wherever they come from.

    Opening the archive, walking its headers, or reading a member's data, which happens in
    the caller's loop (the fuzz run found an archive cut inside a member's data).
    """
    try:
        yield
    except tarfile.TarError as exc:
        raise BundleError(
            f"{ALTERED}: the payload is not a readable archive ({exc})", reason=ALTERED
        ) from None


def _sha256_of(stream: IO[bytes], size: int) -> str:
    digest = hashlib.sha256()
    left = size
    while left:
        chunk = stream.read(min(_CHUNK, left))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()


def _checked_members(
    stream: IO[bytes], manifest: Manifest
) -> Iterator[tuple[FileEntry, IO[bytes]]]:
    """Each regular file of the payload with its manifest entry, after every check on it."""
    expected = manifest.file_map()
    seen: set[str] = set()
    with archive_errors(), tarfile.open(fileobj=stream, mode="r:") as archive:
        for member in archive:
            entry = _checked_member(member, expected, seen)
            if entry is None:
                continue
            content = archive.extractfile(member)
            if content is None:  # pragma: no cover - a regular member always has content
                raise BundleError(
                    f"{UNSAFE_ENTRY}: {member.name!r} has no content", reason=UNSAFE_ENTRY
                )
            yield entry, content
    missing = sorted(set(expected) - seen)
    if missing:
        raise BundleError(
            f"{ALTERED}: {missing[0]!r} is in the manifest but not in the payload", reason=ALTERED
        )


def _checked_member(
    member: tarfile.TarInfo, expected: Mapping[str, FileEntry], seen: set[str]
) -> FileEntry | None:
    name = member.name.removesuffix("/") if member.isdir() else member.name
    check_path(name)
    if member.isdir():
        return None
    if not member.isreg():
        raise BundleError(
            f"{UNSAFE_ENTRY}: {name!r} is a link or a device file", reason=UNSAFE_ENTRY
        )
    entry = expected.get(name)
    if entry is None:
        raise BundleError(
            f"{ALTERED}: {name!r} is in the payload but not in the manifest", reason=ALTERED
        )
    if name in seen:
        raise BundleError(f"{ALTERED}: {name!r} is twice in the payload", reason=ALTERED)
    if member.size != entry.size:
        raise BundleError(
            f"{ALTERED}: {name!r} is {member.size} bytes, the manifest says {entry.size}",
            reason=ALTERED,
        )
    seen.add(name)
    return entry


def unpack(bundle: VerifiedBundle, destination: Path) -> None:
    """Write the payload's files under ``destination`` (which must not exist yet), 0644/0755.

    Each file is hashed as it is written and compared with the manifest, so a bundle file
    changed between ``verify_bundle`` and now is caught; the caller then removes the partial
    tree (it is a new slot, never the running one).
    """
    destination.mkdir(mode=0o755)
    with bundle.path.open("rb") as stream, archive_errors():
        stream.seek(len(bundle.header.raw))
        for entry, content in _checked_members(stream, bundle.manifest):
            target = destination.joinpath(*PurePosixPath(entry.path).parts)
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with target.open("xb") as out:
                while chunk := content.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())  # durable before the slot is renamed into use
            target.chmod(0o644)
            if digest.hexdigest() != entry.sha256:
                raise BundleError(
                    f"{ALTERED}: {entry.path!r} does not have its signed SHA-256", reason=ALTERED
                )


# --- writing -------------------------------------------------------------------------------


def manifest_bytes(manifest: Manifest) -> bytes:
    doc = {
        "product": manifest.product,
        "version": str(manifest.version),
        "min_version": str(manifest.min_version),
        "build_date": manifest.build_date,
        "payload": {"size": manifest.payload_size, "sha256": manifest.payload_sha256},
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in manifest.files],
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")


def signed_header(manifest_json: bytes, key: Ed25519PrivateKey) -> bytes:
    """Magic, version, length and manifest, followed by their signature."""
    signed = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(manifest_json)) + manifest_json
    return signed + key.sign(signed)


def build_payload(files: Mapping[str, bytes], *, mtime: int) -> bytes:
    """A tar archive of ``files`` with fixed owners, modes and times, so builds repeat."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            check_path(name)
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = mtime
            archive.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def make_bundle(
    files: Mapping[str, bytes],
    key: Ed25519PrivateKey,
    *,
    version: Version,
    min_version: Version,
    build_date: str,
    mtime: int = 0,
) -> bytes:
    """A whole bundle holding ``files`` (path -> content), signed with ``key``."""
    payload = build_payload(files, mtime=mtime)
    manifest = Manifest(
        product=PRODUCT,
        version=version,
        min_version=min_version,
        build_date=build_date,
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        files=tuple(
            FileEntry(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
            for name, data in sorted(files.items())
        ),
    )
    return signed_header(manifest_bytes(manifest), key) + payload
