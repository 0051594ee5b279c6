"""How long the start-up integrity check takes on a real slot (issue 5's target: under 1 s).

Builds the wheel of this tree, signs it with a throw-away key, installs it into a slot in a
temporary directory, then times ``integrity.check_slot`` (signature, then every file hashed
and the tree walked for extra files) ``--repeat`` times, page cache warm, and once after
asking the kernel to drop its caches where that is allowed (root, not in every container).
As the peer, the same files are hashed by ``sha256sum`` in one process, the floor of any
check that reads every byte. Writes ``bench/results/integrity.md``.

    .venv/bin/python bench/integrity/check.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.version import Version

from panelhub.security import bundle, firmware, integrity, slots

ROOT = Path(__file__).resolve().parent.parent.parent


def build_slot(work: Path) -> tuple[Path, Ed25519PrivateKey]:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(work), str(ROOT)],
        check=True,
    )  # fmt: skip
    (wheel,) = work.glob("panelhub-*.whl")
    key = Ed25519PrivateKey.generate()
    files = firmware.files_of_wheel(wheel)
    data = firmware.sign_files(files, key, min_version=Version("0"), now=dt.datetime.now(dt.UTC))
    path = work / "update.phb"
    path.write_bytes(data)
    verified = bundle.verify_bundle(path, [key.public_key()], installed=None)
    slot = slots.install(verified, work / "slots")
    return slot, key


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "integrity.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="panelhub-integrity-"))
    try:
        slot, key = build_slot(work)
        trusted = [key.public_key()]
        site = slot / slots.SITE_DIR
        files = [p for p in site.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        cold = timed(lambda: integrity.check_slot(slot, trusted)) if drop_caches() else None
        warm = [timed(lambda: integrity.check_slot(slot, trusted)) for _ in range(args.repeat)]
        peer = [
            timed(
                lambda: subprocess.run(
                    ["sha256sum", *map(str, files)], check=True, capture_output=True
                )
            )
            for _ in range(args.repeat)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cold_text = (
        f"{cold * 1000:.0f} ms"
        if cold is not None
        else "not measured (caches could not be dropped)"
    )
    machine = f"{_cpus()} CPUs, {platform.processor() or platform.machine()}"
    warm_text = f"{statistics.median(warm) * 1000:.0f} / {max(warm) * 1000:.0f} ms"
    peer_text = f"{statistics.median(peer) * 1000:.0f} ms"
    text = f"""# Start-up integrity check

- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC
- machine: {machine}, Python {platform.python_version()}
- command: `.venv/bin/python bench/integrity/check.py --repeat {args.repeat}`
- slot: the wheel of this tree, {len(files)} files, {size:,} bytes

| figure | value | target |
| --- | --- | --- |
| check, page cache warm, p50 / max of {args.repeat} | {warm_text} | < 1 s |
| check, caches dropped first | {cold_text} | < 1 s |
| peer: `sha256sum` of the same files (one process, warm), p50 | {peer_text} | |

The check verifies the manifest's Ed25519 signature, hashes every file listed, and walks the
tree for files not listed. `sha256sum` includes its own process start (a few ms).
"""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


def _cpus() -> int:
    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
