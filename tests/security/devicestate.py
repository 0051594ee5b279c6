"""A provisioned data directory with something in every store, and canaries to look for.

Used by the backup, restore and factory reset tests: each canary is a value a user would not
want a stranger to read (a key, a hash, an account, a logged value), planted where PanelHub
keeps it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from panelhub.config.models import Settings
from panelhub.config.store import save_settings
from panelhub.devices.catalog import builtin_templates
from panelhub.security import auditkey, certs, firmware
from panelhub.security.accounts import STATE_FILE, AccountStore, Role
from panelhub.security.audit import AuditEvent, AuditLog, Outcome
from panelhub.security.passwords import PasswordHasher
from panelhub.storage.series import Sample, SeriesKind
from panelhub.storage.timeseries import SyncTimeSeriesStore, open_datalog

CANARY_USER = "canary-user-5b1e"
CANARY_DEVICE = "canary-device-77"
CANARY_AUDIT = "canary-audit-c0ffee"
CANARY_MODEL = "canary-model"
#: A cheap hash, as in the web tests: these tests are about files, not password cost.
HASHER = PasswordHasher(memory_cost_kib=1024, time_cost=1)


@dataclass(frozen=True)
class DeviceState:
    data_dir: Path
    config: Path
    initial_password: str

    def canaries(self) -> list[bytes]:
        """Byte strings that must not survive a factory reset, nor appear in clear in a backup."""
        key_pem = (self.data_dir / "tls" / certs.KEY_FILE).read_bytes()
        key_body = b"".join(key_pem.splitlines()[1:-1])
        with sqlite3.connect(self.data_dir / STATE_FILE) as connection:
            hashes = [row[0] for row in connection.execute(
                "SELECT password_hash FROM account WHERE password_hash IS NOT NULL")]  # fmt: skip
        return [
            CANARY_USER.encode(),
            CANARY_DEVICE.encode(),
            CANARY_AUDIT.encode(),
            CANARY_MODEL.encode(),
            key_body[:48],
            (self.data_dir / auditkey.KEY_FILE).read_bytes(),
            *(h.encode() for h in hashes),
        ]


def model_text() -> str:
    """A custom model: a built-in template's file under another id."""
    source = next(iter(builtin_templates().values()))
    text = (resources.files("panelhub.devices.templates") / f"{source.id}.toml").read_text()
    return text.replace(f'id = "{source.id}"', f'id = "{CANARY_MODEL}"', 1)


def provision(root: Path) -> DeviceState:
    data_dir = root / "var"
    provisioning = AccountStore.open(data_dir, HASHER)
    store = provisioning.store
    assert provisioning.initial_password is not None
    asyncio.run(store.create(CANARY_USER, Role.OPERATOR, "Xq7!mWz#42pLr-v"))
    AuditLog(store.db).record_sync(AuditEvent.CONFIG_CHANGED, outcome=Outcome.SUCCESS, user="admin",
                                   source="127.0.0.1", interface="web",
                                   details={"setting": CANARY_AUDIT})  # fmt: skip
    store.close()
    auditkey.load_or_create_key(data_dir)
    certs.ensure_certificate(data_dir / "tls", host_names=["panel.test"], addresses=["127.0.0.1"])
    (data_dir / "models").mkdir(mode=0o700)
    (data_dir / "models" / f"{CANARY_MODEL}.toml").write_text(model_text())
    owner_key = Ed25519PrivateKey.generate().public_key()
    firmware.add_trust_anchor(
        data_dir,
        owner_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        source="owner",
    )
    db = open_datalog(data_dir / "datalog.sqlite")
    try:
        series = SyncTimeSeriesStore(db).register_series(
            CANARY_DEVICE, "energy", kind=SeriesKind.COUNTER, unit="kWh", period_s=60
        )
        SyncTimeSeriesStore(db).append(
            [(series.series_id, Sample(1_790_000_000 + 60 * i, 1000.0 + i)) for i in range(50)]
        )
    finally:
        db.close()
    config = root / "panelhub.toml"
    save_settings(config, Settings(data_dir=data_dir, timezone="Europe/Paris"))
    return DeviceState(data_dir, config, provisioning.initial_password)


def snapshot(state: DeviceState) -> dict[str, object]:
    """What a restore must bring back: accounts, files of the backed-up directories, settings."""
    with sqlite3.connect(state.data_dir / STATE_FILE) as connection:
        accounts = connection.execute(
            "SELECT name, role, password_hash, is_enabled, must_change_password FROM account "
            "ORDER BY name"
        ).fetchall()
    files = {
        path.relative_to(state.data_dir).as_posix(): path.read_bytes()
        for directory in ("tls", "models", "trust")
        for path in sorted((state.data_dir / directory).glob("*"))
        if path.is_file() and not path.name.startswith(".")
    }
    files["audit-key"] = (state.data_dir / auditkey.KEY_FILE).read_bytes()
    return {"accounts": accounts, "files": files, "config": state.config.read_text()}
