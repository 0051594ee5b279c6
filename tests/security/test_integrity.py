"""Slots and the start-up check: a slot holds exactly what was signed, and any change shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.version import Version

from panelhub.errors import IntegrityError
from panelhub.security import bundle, integrity, slots

KEY = Ed25519PrivateKey.generate()
TRUSTED = [KEY.public_key()]
FILES = {
    "panelhub/__init__.py": b'"""PanelHub."""\n',
    "panelhub/service.py": b"def run():\n    pass\n",
    "panelhub/web/templates/base.html": b"<!doctype html>\n",
    "panelhub-0.2.0.dist-info/METADATA": b"Name: panelhub\nVersion: 0.2.0\n",
}


def installed(tmp_path: Path, files: dict[str, bytes] = FILES, version: str = "0.2.0") -> Path:
    path = tmp_path / f"update-{version}-{len(files)}.phb"
    data = bundle.make_bundle(files, KEY, version=Version(version), min_version=Version("0"),
                              build_date="2026-11-29T05:00:00Z")  # fmt: skip
    path.write_bytes(data)
    verified = bundle.verify_bundle(path, TRUSTED, installed=Version("0.1.0"))
    return slots.install(verified, tmp_path / "slots")


def test_an_installed_slot_passes_the_check_and_is_the_trial(tmp_path: Path) -> None:
    slot = installed(tmp_path)
    result = integrity.check_slot(slot, TRUSTED)
    assert result.files == len(FILES)
    assert slots.target_of(tmp_path / "slots", slots.TRIAL) == slot
    assert slots.target_of(tmp_path / "slots", slots.CURRENT) is None
    assert not list((tmp_path / "slots").glob(".new-*"))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda site: (site / "panelhub/service.py").write_bytes(b"def run():\n    1/0\n"),
            "panelhub/service.py: changed",
        ),
        (lambda site: (site / "panelhub/web/templates/base.html").unlink(), "base.html: missing"),
        (
            lambda site: (site / "panelhub/backdoor.py").write_bytes(b"import os\n"),
            "backdoor.py: not in the signed manifest",
        ),
        (
            lambda site: (site / "panelhub/__init__.py").write_bytes(b'"""PanelHub!"""\n'),
            "__init__.py: changed",
        ),
        (
            lambda site: (site / "panelhub/plugins").symlink_to(site.parent),
            "panelhub/plugins: not in the signed manifest",
        ),
    ],
)
def test_a_changed_missing_or_extra_file_fails_the_check_and_is_named(
    tmp_path: Path, change, words: str
) -> None:
    slot = installed(tmp_path)
    site = slot / slots.SITE_DIR
    for path in site.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
    change(site)
    with pytest.raises(IntegrityError) as caught:
        integrity.check_slot(slot, TRUSTED)
    assert any(words in problem for problem in caught.value.problems), caught.value.problems


def test_a_manifest_signed_by_a_key_no_longer_trusted_fails_the_check(tmp_path: Path) -> None:
    slot = installed(tmp_path)
    with pytest.raises(IntegrityError, match="wrong signature"):
        integrity.check_slot(slot, [Ed25519PrivateKey.generate().public_key()])


def test_a_header_edited_to_match_a_changed_file_fails_on_its_signature(tmp_path: Path) -> None:
    slot = installed(tmp_path)
    header = (slot / slots.HEADER_FILE).read_bytes()
    (slot / slots.HEADER_FILE).write_bytes(header.replace(b'"size": 20', b'"size": 21', 1))
    with pytest.raises(IntegrityError):
        integrity.check_slot(slot, TRUSTED)


def test_bytecode_caches_beside_the_code_are_not_faults(tmp_path: Path) -> None:
    slot = installed(tmp_path)
    cache = slot / slots.SITE_DIR / "panelhub" / "__pycache__"
    cache.mkdir()
    (cache / "service.cpython-311.pyc").write_bytes(b"\x00" * 16)
    integrity.check_slot(slot, TRUSTED)


def test_a_missing_slot_header_fails_the_check(tmp_path: Path) -> None:
    slot = installed(tmp_path)
    (slot / slots.HEADER_FILE).unlink()
    with pytest.raises(IntegrityError, match="cannot be read"):
        integrity.check_slot(slot, TRUSTED)


def test_promote_and_reject_move_the_links_and_prune_unnamed_slots(tmp_path: Path) -> None:
    root = tmp_path / "slots"
    first = installed(tmp_path)
    slots.promote_trial(root)
    assert slots.target_of(root, slots.CURRENT) == first
    second = installed(tmp_path, {**FILES, "panelhub/new.py": b"x = 1\n"})
    slots.promote_trial(root)
    assert slots.target_of(root, slots.CURRENT) == second
    assert slots.target_of(root, slots.PREVIOUS) == first
    third = installed(tmp_path, {**FILES, "panelhub/new.py": b"x = 2\n"})
    slots.reject_trial(root)
    assert slots.target_of(root, slots.TRIAL) is None
    assert slots.target_of(root, slots.FAILED) == third
    assert slots.target_of(root, slots.CURRENT) == second
    fourth = installed(tmp_path, {**FILES, "panelhub/new.py": b"x = 3\n"})
    slots.promote_trial(root)  # second -> previous; first is named by nothing: removed
    assert slots.target_of(root, slots.CURRENT) == fourth
    assert not first.exists()
    assert third.exists()  # the failed one is kept for a look


def test_an_interrupted_install_leaves_no_trial_and_no_half_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "slots"
    first = installed(tmp_path)
    slots.promote_trial(root)

    def killed(verified: bundle.VerifiedBundle, destination: Path) -> None:
        destination.mkdir()
        (destination / "half.py").write_bytes(b"")
        raise KeyboardInterrupt  # the kill, in the middle of unpacking

    monkeypatch.setattr(bundle, "unpack", killed)
    with pytest.raises(KeyboardInterrupt):
        installed(tmp_path, {**FILES, "panelhub/new.py": b"y = 1\n"})
    monkeypatch.undo()
    assert slots.target_of(root, slots.TRIAL) is None
    assert slots.target_of(root, slots.CURRENT) == first
    names = sorted(p.name for p in root.iterdir() if p.name != slots.LOCK_FILE)
    assert names == sorted([first.name, "current"])  # no half slot, no .new-* left


def test_this_development_checkout_is_an_editable_install_and_says_unchecked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(slots.SLOT_ENV, raising=False)
    assert integrity.is_editable_install()
    assert "UNCHECKED" in integrity.check_running_code(TRUSTED).what


def test_the_process_checks_the_slot_the_launcher_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slot = installed(tmp_path)
    monkeypatch.setenv(slots.SLOT_ENV, os.fspath(slot))
    assert integrity.check_running_code(TRUSTED).files == len(FILES)
    (slot / slots.SITE_DIR / "panelhub" / "service.py").write_bytes(b"")
    with pytest.raises(IntegrityError):
        integrity.check_running_code(TRUSTED)


def test_reinstalling_the_same_bundle_repairs_a_changed_slot(tmp_path: Path) -> None:
    """The reason page says to reinstall: the same bundle must bring the slot back whole."""
    slot = installed(tmp_path)
    slots.promote_trial(tmp_path / "slots")
    (slot / slots.SITE_DIR / "panelhub" / "service.py").write_bytes(b"evil = True\n")
    (slot / slots.SITE_DIR / "panelhub" / "extra.py").write_bytes(b"")
    with pytest.raises(IntegrityError):
        integrity.check_slot(slot, TRUSTED)
    again = installed(tmp_path)
    assert again == slot
    integrity.check_slot(slot, TRUSTED)
    assert not list((tmp_path / "slots").glob(".new-*"))
