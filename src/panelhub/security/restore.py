"""What a backup holds, taken from a device, checked, and put back in one step.

A backup's contents (inside the encryption of ``backup.py``) are a tar archive of:

- ``config.toml``: the settings, without ``data_dir`` (a restore keeps the device's own);
- ``accounts.json``: every account with its role and password *hash* (never a password);
  lock counters are not kept, a restored device starts with none;
- ``audit-key``, ``tls/`` (key, certificate, origin), ``models/*.toml`` (custom device
  models), ``trust/*.pem`` (the owner's trust anchors): files of the data directory.

The datalog, the audit log and the update slots are not in a backup: the audit log is the
device's own history (a restore is one more record in it, never a rewrite of it).

Theory of operation (restore): every part is checked first (settings validate, accounts
name an enabled admin with a password, the certificate matches its key, models parse, keys
are keys); nothing on disk has changed if one fails. The new state is then written in full
under ``<data dir>/.restore/`` and fsynced, and that directory is renamed ``.restore-commit``:
the commit point. ``finish`` then swaps each part into place with steps that can be redone,
and removes ``.restore-commit``; ``recover`` (at every start, before anything reads the data
directory) finishes a commit a crash interrupted and throws away an uncommitted ``.restore``.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import sqlite3
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from panelhub.config.models import Settings
from panelhub.config.store import parse_settings, settings_toml
from panelhub.errors import (
    AccountError,
    BackupError,
    CertificateError,
    ConfigError,
    TemplateError,
)
from panelhub.security import auditkey, certpolicy, certs, fileset, firmware
from panelhub.security.accounts import (
    PROVISIONED_MARKER,
    STATE_FILE,
    Role,
    check_name,
    forget_initial_password,
)
from panelhub.storage.db import Database, transaction

logger = logging.getLogger(__name__)

#: ``devices.catalog.TEMPLATE_SUFFIX``: this layer does not import ``devices``; the caller
#: hands ``parse`` the function that checks a model (``ModelCheck``).
TEMPLATE_SUFFIX: Final = ".toml"
#: Checks a custom model's text (raising ``TemplateError``) and returns its id.
ModelCheck = Callable[[str, str], str]
CONFIG_MEMBER: Final = "config.toml"
ACCOUNTS_MEMBER: Final = "accounts.json"
TLS_DIR: Final = "tls"
MODELS_DIR: Final = "models"
#: Directories of the data directory a backup replaces whole.
DIRECTORIES: Final = (TLS_DIR, MODELS_DIR, firmware.TRUST_DIR)
TLS_FILES: Final = (certs.KEY_FILE, certs.CERT_FILE, certs.ORIGIN_FILE)
STAGING: Final = ".restore"
COMMIT: Final = ".restore-commit"
PLAN_FILE: Final = "plan.json"
#: Where each kind of file goes, and with which mode: keys and the audit key are secrets.
SECRET_MODE: Final = 0o600
PUBLIC_MODE: Final = 0o644
DAMAGED: Final = "damaged contents"
#: Columns of an account a backup carries (lock counters are left out on purpose).
ACCOUNT_COLUMNS: Final = (
    "name",
    "role",
    "password_hash",
    "is_enabled",
    "must_change_password",
    "created_at",
    "password_changed_at",
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A device's state as a backup holds it, every part already checked."""

    config_toml: str
    accounts: tuple[dict[str, object], ...]
    #: Data-directory files by relative path (``audit-key``, ``tls/key.pem``, ...).
    files: Mapping[str, bytes]


# --- taking ---------------------------------------------------------------------------------


def take(data_dir: Path, settings: Settings) -> bytes:
    """The contents of a backup of this device: a tar archive (see the module docstring)."""
    config = settings.model_copy(update={"data_dir": Settings().data_dir})
    members: dict[str, bytes] = {
        CONFIG_MEMBER: settings_toml(config).encode("utf-8"),
        ACCOUNTS_MEMBER: json.dumps(_read_accounts(data_dir), indent=1).encode("utf-8"),
    }
    key_path = data_dir / auditkey.KEY_FILE
    if key_path.is_file():
        members[auditkey.KEY_FILE] = key_path.read_bytes()
    for directory in DIRECTORIES:
        folder = data_dir / directory
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.is_symlink() and _is_backed_up(directory, path.name):
                    members[f"{directory}/{path.name}"] = path.read_bytes()
    return tar_members(members)


def _is_backed_up(directory: str, name: str) -> bool:
    if directory == TLS_DIR:
        return name in TLS_FILES
    if directory == MODELS_DIR:
        return name.endswith(TEMPLATE_SUFFIX) and not name.startswith(".")
    return name.endswith(".pem") and not name.startswith(".")


def _read_accounts(data_dir: Path) -> list[dict[str, object]]:
    db = Database.open(data_dir / STATE_FILE, create=False)
    try:

        def read(connection: sqlite3.Connection) -> list[dict[str, object]]:
            rows = connection.execute(
                f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM account ORDER BY id"  # noqa: S608 - fixed names
            ).fetchall()
            return [dict(zip(ACCOUNT_COLUMNS, row, strict=True)) for row in rows]

        return db.run_sync(read)
    finally:
        db.close()


def tar_members(members: Mapping[str, bytes]) -> bytes:
    """The uncompressed tar archive of ``members`` (name -> content) a backup holds."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- checking -------------------------------------------------------------------------------


def parse(contents: bytes, *, model_id_of: ModelCheck) -> Snapshot:
    """Every part of decrypted backup contents, checked; raises ``BackupError`` naming the part."""
    members = _untar(contents)
    try:
        config_toml = members.pop(CONFIG_MEMBER).decode("utf-8")
        accounts = _check_accounts(json.loads(members.pop(ACCOUNTS_MEMBER)))
    except KeyError as exc:
        raise BackupError(f"{DAMAGED}: {exc.args[0]} is missing", reason=DAMAGED) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{DAMAGED}: {exc}", reason=DAMAGED) from None
    _check_config(config_toml)
    _check_files(members, model_id_of)
    return Snapshot(config_toml=config_toml, accounts=accounts, files=members)


def _untar(contents: bytes) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(contents), mode="r:") as archive:
            for info in archive:
                name = info.name
                top, _, rest = name.partition("/")
                is_known = name in (CONFIG_MEMBER, ACCOUNTS_MEMBER, auditkey.KEY_FILE) or (
                    top in DIRECTORIES and rest and "/" not in rest and _is_backed_up(top, rest)
                )
                if not info.isreg() or not is_known or name in members:
                    raise BackupError(f"{DAMAGED}: unexpected entry {name!r}", reason=DAMAGED)
                content = archive.extractfile(info)
                if content is None:  # pragma: no cover - a regular member has content
                    raise BackupError(f"{DAMAGED}: {name!r} has no content", reason=DAMAGED)
                members[name] = content.read()
    except tarfile.TarError as exc:
        raise BackupError(f"{DAMAGED}: {exc}", reason=DAMAGED) from None
    return members


def _check_accounts(doc: object) -> tuple[dict[str, object], ...]:
    if not isinstance(doc, list):
        raise BackupError(f"{DAMAGED}: the accounts are not a list", reason=DAMAGED)
    accounts = []
    names: set[str] = set()
    for item in doc:
        if not isinstance(item, dict) or set(item) != set(ACCOUNT_COLUMNS):
            raise BackupError(f"{DAMAGED}: an account has other fields", reason=DAMAGED)
        _check_account_types(item)
        if item["name"].casefold() in names:  # the table's names are unique, case aside
            raise BackupError(f"{DAMAGED}: account {item['name']!r} is there twice", reason=DAMAGED)
        names.add(item["name"].casefold())
        try:
            check_name(item["name"])
            Role(item["role"])
        except (AccountError, ValueError) as exc:
            raise BackupError(
                f"{DAMAGED}: account {item['name']!r}: {exc}", reason=DAMAGED
            ) from None
        pw_hash = item["password_hash"]
        if pw_hash is not None and not (
            isinstance(pw_hash, str) and pw_hash.startswith("$argon2id$")
        ):
            raise BackupError(
                f"{DAMAGED}: account {item['name']!r} has no argon2id hash", reason=DAMAGED
            )
        accounts.append(item)
    if not any(
        a["role"] == Role.ADMIN and a["is_enabled"] and a["password_hash"] for a in accounts
    ):
        raise BackupError(f"{DAMAGED}: no enabled admin account with a password", reason=DAMAGED)
    return tuple(accounts)


def _check_account_types(item: dict[str, object]) -> None:
    """What the ``account`` table would refuse, refused before the commit point instead."""
    is_ok = (
        isinstance(item["name"], str)
        and isinstance(item["role"], str)
        and item["is_enabled"] in (0, 1)
        and item["must_change_password"] in (0, 1)
        and isinstance(item["created_at"], str)
        and (item["password_changed_at"] is None or isinstance(item["password_changed_at"], str))
    )
    if not is_ok:
        raise BackupError(f"{DAMAGED}: an account has a field of the wrong type", reason=DAMAGED)


def _check_config(text: str) -> None:
    import tomllib  # noqa: PLC0415 - only a restore parses TOML here

    try:
        parse_settings(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ConfigError) as exc:
        raise BackupError(
            f"{DAMAGED}: the settings do not validate: {exc}", reason=DAMAGED
        ) from None


def _check_files(files: Mapping[str, bytes], model_id_of: ModelCheck) -> None:
    try:
        if any(name.startswith(f"{TLS_DIR}/") for name in files):
            chain = certpolicy.parse_chain(files[f"{TLS_DIR}/{certs.CERT_FILE}"])
            certpolicy.check_pair(chain, certpolicy.parse_key(files[f"{TLS_DIR}/{certs.KEY_FILE}"]))
        for name, data in files.items():
            if name.startswith(f"{MODELS_DIR}/"):
                model_id = model_id_of(data.decode("utf-8"), name)
                if name != f"{MODELS_DIR}/{model_id}{TEMPLATE_SUFFIX}":
                    raise BackupError(f"{DAMAGED}: {name} holds model {model_id!r}", reason=DAMAGED)
            elif name.startswith(f"{firmware.TRUST_DIR}/"):
                firmware.load_public_key(data, source=name)
            elif name == auditkey.KEY_FILE and len(data) != auditkey.KEY_BYTES:
                raise BackupError(
                    f"{DAMAGED}: the audit key is not {auditkey.KEY_BYTES} bytes", reason=DAMAGED
                )
    except KeyError as exc:
        raise BackupError(f"{DAMAGED}: {exc.args[0]} is missing", reason=DAMAGED) from None
    except (CertificateError, TemplateError, firmware.KeyFileError, UnicodeDecodeError) as exc:
        raise BackupError(f"{DAMAGED}: {exc}", reason=DAMAGED) from None


# --- putting back ---------------------------------------------------------------------------


def apply(
    snapshot: Snapshot, data_dir: Path, *, config_path: Path | None, settings: Settings
) -> None:
    """Replace the device's state with ``snapshot``, all of it or (after a crash) none of it.

    ``config_path`` None (the demo's built-in settings) leaves the settings as they are.
    """
    with fileset.locked(data_dir):
        recover(data_dir)
        staging = data_dir / STAGING
        staging.mkdir(mode=0o700)
        for name, data in snapshot.files.items():
            (staging / name).parent.mkdir(mode=0o700, exist_ok=True)
            fileset.write_synced(staging / name, data, _mode_of(name))
        for directory in DIRECTORIES:
            (staging / directory).mkdir(mode=0o700, exist_ok=True)  # an empty one empties it
        fileset.write_synced(
            staging / ACCOUNTS_MEMBER, json.dumps(snapshot.accounts).encode(), SECRET_MODE
        )
        plan: dict[str, str] = {}
        if config_path is not None:
            config = parse_settings(_toml(snapshot.config_toml)).model_copy(
                update={"data_dir": settings.data_dir}
            )
            pending = config_path.with_name(f".{config_path.name}.restoring")
            pending.unlink(missing_ok=True)
            fileset.write_synced(pending, settings_toml(config).encode("utf-8"), SECRET_MODE)
            plan = {"config": str(config_path.resolve()), "pending": str(pending.resolve())}
        fileset.write_synced(staging / PLAN_FILE, json.dumps(plan).encode(), SECRET_MODE)
        for directory in (*DIRECTORIES, ""):
            fileset.fsync_dir(staging / directory)
        staging.rename(data_dir / COMMIT)  # the commit point
        fileset.fsync_dir(data_dir)
        finish(data_dir)


def _toml(text: str) -> dict[str, object]:
    import tomllib  # noqa: PLC0415

    return tomllib.loads(text)


def _mode_of(name: str) -> int:
    if name in (auditkey.KEY_FILE, f"{TLS_DIR}/{certs.KEY_FILE}"):
        return SECRET_MODE
    return PUBLIC_MODE


def recover(data_dir: Path) -> None:
    """Finish a restore that reached its commit point; forget one that did not."""
    if (data_dir / COMMIT).is_dir():
        logger.warning("finishing a restore that was interrupted in %s", data_dir)
        finish(data_dir)
    if (data_dir / STAGING).exists():
        shutil.rmtree(data_dir / STAGING)


def finish(data_dir: Path) -> None:
    """Move each part of a committed restore into place; every step can be done again."""
    commit = data_dir / COMMIT
    for directory in DIRECTORIES:
        new, old, current = commit / directory, data_dir / f".old-{directory}", data_dir / directory
        if new.is_dir():
            if current.exists():
                if old.exists():
                    shutil.rmtree(old)
                current.rename(old)
            new.rename(current)
        if old.exists():
            shutil.rmtree(old)
    if (commit / auditkey.KEY_FILE).exists():
        (commit / auditkey.KEY_FILE).replace(data_dir / auditkey.KEY_FILE)
    if (commit / ACCOUNTS_MEMBER).exists():
        _replace_accounts(data_dir, json.loads((commit / ACCOUNTS_MEMBER).read_bytes()))
        (commit / ACCOUNTS_MEMBER).unlink()
    plan = json.loads((commit / PLAN_FILE).read_bytes()) if (commit / PLAN_FILE).exists() else {}
    if plan and Path(plan["pending"]).exists():
        Path(plan["pending"]).replace(plan["config"])
    fileset.fsync_dir(data_dir)
    shutil.rmtree(commit)
    fileset.fsync_dir(data_dir)


def _replace_accounts(data_dir: Path, accounts: list[dict[str, object]]) -> None:
    db = Database.open(data_dir / STATE_FILE)
    try:

        def write(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.execute("DELETE FROM account")
                connection.executemany(
                    f"INSERT INTO account ({', '.join(ACCOUNT_COLUMNS)}) "  # noqa: S608 - fixed names
                    f"VALUES ({', '.join('?' * len(ACCOUNT_COLUMNS))})",
                    [tuple(account[c] for c in ACCOUNT_COLUMNS) for account in accounts],
                )

        db.run_sync(write)
    finally:
        db.close()
    # A restored store is a provisioned one; the first start's password no longer opens it.
    marker = data_dir / PROVISIONED_MARKER
    if not marker.exists():
        fileset.write_synced(marker, b"restored\n", SECRET_MODE)
    forget_initial_password(data_dir)
