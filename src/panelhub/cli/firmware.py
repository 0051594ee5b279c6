"""``panelhub firmware``: make a signing key, sign a build, check a bundle, manage trust.

keygen and sign run on a build machine, never on a device; verify runs anywhere; ``trust``
edits a device's trust anchors in its data directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Final

from packaging.version import InvalidVersion, Version

from panelhub.cli.backup import audit_console
from panelhub.cli.main import ExitCode
from panelhub.errors import BundleError
from panelhub.security import bundle, firmware, slots
from panelhub.security.audit import AuditEvent, Outcome

#: Where a device keeps its software slots (``security/slots.py``).
DEFAULT_SLOTS: Final = Path("/var/lib/panelhub-slots")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "firmware", help="signed update bundles: keys, sign, verify, trust"
    )
    actions = parser.add_subparsers(dest="firmware_command", required=True)

    keygen = actions.add_parser("keygen", help="write a new Ed25519 signing key (0600) and KEY.pub")
    keygen.add_argument("key", type=Path, metavar="KEY")
    keygen.add_argument(
        "--data-dir", type=Path, default=Path("var"), help="refused as a place for the key"
    )
    keygen.set_defaults(handler=cmd_keygen)

    sign = actions.add_parser("sign", help="make a signed bundle of a wheel or an installed tree")
    source = sign.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheel", type=Path, metavar="FILE")
    source.add_argument("--tree", type=Path, metavar="DIR", help="a site-packages-like directory")
    sign.add_argument("--key", type=Path, required=True, metavar="KEY")
    sign.add_argument("--min-version", default="0", help="oldest installed version it may replace")
    sign.add_argument("--output", "-o", type=Path, required=True, metavar="BUNDLE")
    sign.set_defaults(handler=cmd_sign)

    verify = actions.add_parser("verify", help="check a bundle's signature and every file")
    verify.add_argument("bundle", type=Path, metavar="BUNDLE")
    keys = verify.add_mutually_exclusive_group()
    keys.add_argument(
        "--data-dir", type=Path, help="use this device's trust anchors (default ./var)"
    )
    keys.add_argument(
        "--key", type=Path, action="append", metavar="KEY.pub", help="trust this public key"
    )
    verify.set_defaults(handler=cmd_verify)

    install = actions.add_parser("install", help="check a bundle and install it into a new slot")
    install.add_argument("bundle", type=Path, metavar="BUNDLE")
    install.add_argument(
        "--slots", type=Path, default=DEFAULT_SLOTS, help=f"default {DEFAULT_SLOTS}"
    )
    install.add_argument("--data-dir", type=Path, default=Path("var"), help="default ./var")
    install.set_defaults(handler=cmd_install)

    trust = actions.add_parser("trust", help="the public keys this device accepts bundles from")
    trust_actions = trust.add_subparsers(dest="trust_command", required=True)
    add = trust_actions.add_parser("add", help="accept bundles signed by this public key")
    add.add_argument("public_key", type=Path, metavar="KEY.pub")
    add.add_argument("--data-dir", type=Path, default=Path("var"), help="default ./var")
    add.set_defaults(handler=cmd_trust_add)
    listing = trust_actions.add_parser("list", help="list the trust anchors")
    listing.add_argument("--data-dir", type=Path, default=Path("var"), help="default ./var")
    listing.set_defaults(handler=cmd_trust_list)


def cmd_keygen(args: argparse.Namespace) -> ExitCode:
    ident = firmware.generate_key(args.key, data_dir=args.data_dir)
    print(
        f"private key {args.key} (keep it off devices), public key {firmware.public_path(args.key)}"
    )
    print(f"key ID {ident}")
    return ExitCode.OK


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise BundleError(f"{text!r} is not a version", reason=bundle.BAD_MANIFEST) from None


def _now() -> dt.datetime:
    """The build date: ``SOURCE_DATE_EPOCH`` when set, so that a rebuild is byte for byte equal."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def cmd_sign(args: argparse.Namespace) -> ExitCode:
    key = firmware.load_private_key(args.key)
    files = firmware.files_of_wheel(args.wheel) if args.wheel else firmware.files_of_tree(args.tree)
    data = firmware.sign_files(files, key, min_version=_version(args.min_version), now=_now())
    temporary = args.output.with_name(args.output.name + ".part")
    temporary.write_bytes(data)
    temporary.replace(args.output)
    print(
        f"{args.output}: {len(files)} files, {len(data)} bytes, "
        f"signed by key {bundle.key_id(key.public_key())}"
    )
    return ExitCode.OK


def cmd_verify(args: argparse.Namespace) -> ExitCode:
    if args.key:
        anchors = tuple(
            firmware.TrustAnchor(key, bundle.key_id(key), str(path))
            for path in args.key
            for key in [firmware.load_public_key(path.read_bytes(), source=str(path))]
        )
    else:
        anchors = firmware.trust_anchors(args.data_dir or Path("var"))
    if not anchors:
        print(
            "error: no trust anchor: give --key KEY.pub or add one with 'firmware trust add'",
            file=sys.stderr,
        )
        return ExitCode.FAILURE
    verified = bundle.verify_bundle(args.bundle, [a.key for a in anchors], installed=None)
    manifest = verified.manifest
    print(
        f"{args.bundle}: good signature by key {verified.header.key_id}; {manifest.product} "
        f"{manifest.version} (replaces {manifest.min_version} or later), "
        f"built {manifest.build_date}, {len(manifest.files)} files"
    )
    return ExitCode.OK


def cmd_install(args: argparse.Namespace) -> ExitCode:
    anchors = firmware.trust_anchors(args.data_dir)
    try:
        verified = bundle.verify_bundle(
            args.bundle, [a.key for a in anchors], installed=slots.installed_version(args.slots)
        )
        slot = slots.install(verified, args.slots)
    except BundleError as exc:
        audit_console(args.data_dir, AuditEvent.FIRMWARE_REJECTED, Outcome.FAILURE,
                      file=args.bundle.name, reason=exc.reason)  # fmt: skip
        raise
    manifest = verified.manifest
    audit_console(args.data_dir, AuditEvent.FIRMWARE_ACCEPTED, Outcome.SUCCESS,
                  file=args.bundle.name, version=str(manifest.version),
                  signer=verified.header.key_id)  # fmt: skip
    print(f"PanelHub {manifest.version} installed in {slot}; it runs at the next start of the "
          "service, and the previous code runs again if it does not come up")  # fmt: skip
    return ExitCode.OK


def cmd_trust_add(args: argparse.Namespace) -> ExitCode:
    try:
        data = args.public_key.read_bytes()
    except OSError as exc:
        raise firmware.KeyFileError(f"cannot read {args.public_key}: {exc.strerror}") from None
    anchor = firmware.add_trust_anchor(args.data_dir, data, source=str(args.public_key))
    print(f"trusted key {anchor.key_id} ({anchor.source})")
    return ExitCode.OK


def cmd_trust_list(args: argparse.Namespace) -> ExitCode:
    anchors = firmware.trust_anchors(args.data_dir)
    for anchor in anchors:
        print(f"{anchor.key_id}  {anchor.source}")
    if not anchors:
        print("no trust anchor: no bundle can be installed", file=sys.stderr)
    return ExitCode.OK
