"""The start-up check: the code about to run is, file for file, the code a trusted key signed.

Run before any listener opens. The slot's ``bundle-header`` (the signed manifest the bundle
came with) is verified against the trust anchors, then every file of ``site/`` is compared
with it: a changed, missing or extra file fails the check. Python's bytecode caches are not in
the manifest and are skipped; the launcher points ``PYTHONPYCACHEPREFIX`` outside the slot so
that a cache planted in it is never read.

A development install (``pip install -e``) has no manifest: the check says so and lets it run,
as no device runs one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from panelhub.errors import BundleError, IntegrityError
from panelhub.security import bundle, slots

logger = logging.getLogger(__name__)

_CACHE_DIRS: Final = frozenset({"__pycache__"})
_MAX_PROBLEMS: Final = 20


@dataclass(frozen=True, slots=True)
class CheckResult:
    #: What was checked, in words for the log and the page.
    what: str
    files: int
    elapsed_s: float


def check_slot(slot: Path, trusted: Iterable[Ed25519PublicKey]) -> CheckResult:
    """Verify ``slot`` against its signed header; raises ``IntegrityError`` listing each fault."""
    started = time.perf_counter()
    header_path = slot / slots.HEADER_FILE
    try:
        raw = header_path.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"the signed manifest {header_path} cannot be read: {exc.strerror}",
                             problems=(f"{header_path}: missing",)) from None  # fmt: skip
    try:
        with header_path.open("rb") as stream:
            header = bundle.read_signed_header(stream, trusted, file_size=len(raw))
    except BundleError as exc:
        raise IntegrityError(f"the signed manifest of {slot} is refused: {exc}",
                             problems=(f"{header_path}: {exc.reason}",)) from None  # fmt: skip
    problems = _compare(slot / slots.SITE_DIR, header.manifest)
    if problems:
        raise IntegrityError(
            f"{len(problems)} file(s) of {slot} differ from the signed manifest",
            problems=tuple(problems[:_MAX_PROBLEMS]),
        )
    elapsed = time.perf_counter() - started
    return CheckResult(
        f"{slot.name}, signed by key {header.key_id}", len(header.manifest.files), elapsed
    )


def _compare(site: Path, manifest: bundle.Manifest) -> list[str]:
    problems: list[str] = []
    expected = manifest.file_map()
    for entry in manifest.files:
        path = site.joinpath(*entry.path.split("/"))
        try:
            if path.is_symlink() or not path.is_file():
                problems.append(f"{entry.path}: missing or not a plain file")
            elif path.stat().st_size != entry.size or _sha256(path) != entry.sha256:
                problems.append(f"{entry.path}: changed")
        except OSError as exc:
            problems.append(f"{entry.path}: unreadable ({exc.strerror})")
    for directory, dirs, files in os.walk(site):
        # A link to a directory is listed with the directories and not walked: name it, as
        # an import could go through it.
        links = [d for d in dirs if (Path(directory) / d).is_symlink()]
        dirs[:] = [d for d in dirs if d not in _CACHE_DIRS and d not in links]
        for name in [*files, *links]:
            relative = (Path(directory) / name).relative_to(site).as_posix()
            if relative not in expected:
                problems.append(f"{relative}: not in the signed manifest")
    return problems


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def is_editable_install() -> bool:
    """True for ``pip install -e``: PEP 610's ``direct_url.json`` says ``editable``."""
    try:
        text = metadata.distribution("panelhub").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return False  # no metadata at all: nothing says it is a development install
    if not text:
        return False
    try:
        return bool(json.loads(text).get("dir_info", {}).get("editable", False))
    except (json.JSONDecodeError, AttributeError):
        return False


def check_running_code(trusted: Iterable[Ed25519PublicKey]) -> CheckResult:
    """The check for this process: its slot when the launcher started it, else the base install.

    Raises:
        IntegrityError: the slot's code differs from its manifest, or the code is a plain
            (not editable) install outside any slot: nothing signed vouches for it.
    """
    slot = os.environ.get(slots.SLOT_ENV)
    if slot:
        return check_slot(Path(slot), trusted)
    if is_editable_install():
        return CheckResult("development install (editable): code UNCHECKED", 0, 0.0)
    raise IntegrityError(
        "this installation of PanelHub has no signed manifest: install a signed bundle "
        "(panelhub firmware install) and run it through the launcher (panelhub launch)",
        problems=("no slot: the code outside a slot is not checked, so it is not run",),
    )
