#!/usr/bin/env python3
"""A null-modem cable made of two pseudo-terminals, for hosts without socat.

Opens two pty pairs in raw mode, prints the two far ends as one JSON line
(``{"a": "/dev/pts/3", "b": "/dev/pts/4"}``) and copies bytes between the two
masters until killed or until ``--lifetime-s`` runs out. It keeps its own handles on
the far ends open, so a peer closing and reopening its end never ends the relay.
The copy loop costs CPU on the benchmark host; socat is preferred where installed.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
import tty
from typing import Final

CHUNK_SIZE: Final = 4096
SELECT_TIMEOUT_S: Final = 0.5  # how often the loop checks its deadline
DEFAULT_LIFETIME_S: Final = 1800.0  # a leaked relay still exits on its own


def open_pair() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def relay(master_a: int, master_b: int, *, lifetime_s: float) -> None:
    peer = {master_a: master_b, master_b: master_a}
    deadline = time.monotonic() + lifetime_s
    while time.monotonic() < deadline:
        readable, _, _ = select.select(list(peer), [], [], SELECT_TIMEOUT_S)
        for fd in readable:
            os.write(peer[fd], os.read(fd, CHUNK_SIZE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lifetime-s", type=float, default=DEFAULT_LIFETIME_S)
    args = parser.parse_args()
    master_a, _slave_a, path_a = open_pair()
    master_b, _slave_b, path_b = open_pair()
    print(json.dumps({"a": path_a, "b": path_b}), flush=True)
    relay(master_a, master_b, lifetime_s=args.lifetime_s)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
