"""SIGKILL in the middle of a password change: afterwards exactly one password works.

A real process (``tests.security.password_changer``) changes the admin's password in the
real state database and is killed at chosen points, and at random ones in a loop of
changes. Then the store is opened as the service would open it: it opens, it is not
provisioned again (no new initial password), and exactly one password logs in: the one
before the change or the one after, never both, and never the initial one once a change
has committed.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from panelhub.security.accounts import INITIAL_PASSWORD_FILE, AccountStore, LoginOutcome
from tests.security.password_changer import fast_hasher

REPO = Path(__file__).parents[2]
PASSWORDS = ("Switchboard-Room7", "Patchpanel-Bay42", "Relaycabinet-9Q")
#: Kills of the looping process, each at a random change and a random moment within it.
RANDOM_KILLS = 4


def provision(data_dir: Path) -> str:
    provisioning = AccountStore.open(data_dir, fast_hasher())
    provisioning.store.close()
    assert provisioning.initial_password is not None
    return provisioning.initial_password


def changer(data_dir: Path, where: str, current: str, *new: str) -> list[str]:
    return [sys.executable, "-m", "tests.security.password_changer", str(data_dir), where,
            current, *new]  # fmt: skip


def working_passwords(data_dir: Path, candidates: list[str]) -> list[str]:
    """The candidates that log in as admin, with the store opened as a restart opens it."""

    async def check() -> list[str]:
        provisioning = AccountStore.open(data_dir, fast_hasher())
        store = provisioning.store
        try:
            assert provisioning.initial_password is None  # never provisioned a second time
            return [
                password
                for password in candidates
                if (await store.authenticate("admin", password)).outcome is LoginOutcome.OK
            ]
        finally:
            store.close()

    return asyncio.run(check())


@pytest.mark.parametrize(
    ("where", "said", "old_works"),
    [("before-commit", "about to commit", True), ("after-commit", "committed", False)],
)
def test_killed_at_a_chosen_point_leaves_the_old_or_the_new_password(
    tmp_path, where, said, old_works
):
    initial = provision(tmp_path)
    new = PASSWORDS[0]
    result = subprocess.run(
        changer(tmp_path, where, initial, new),
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert result.stdout.splitlines()[-1] == said
    assert working_passwords(tmp_path, [initial, new]) == ([initial] if old_works else [new])
    if not old_works:  # killed before its deletion: the file is there, its password is dead
        assert (tmp_path / INITIAL_PASSWORD_FILE).read_text().strip() == initial


def test_killed_at_random_moments_of_repeated_changes(tmp_path):
    initial = provision(tmp_path)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    current = initial
    for run in range(RANDOM_KILLS):
        order = [password for password in PASSWORDS if password != current][:2]
        stop_at = rng.randrange(8)
        process = subprocess.Popen(
            changer(tmp_path, "loop", current, *order),
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != f"changing {stop_at}":
            line = process.stdout.readline()
            if not line:
                process.wait(timeout=10)
                pytest.fail(f"the changer stopped by itself: {process.communicate()[1]}")
            lines.append(line.strip())
        time.sleep(rng.uniform(0, 0.004))  # somewhere in hashing, writing or committing
        process.kill()
        rest, _ = process.communicate(timeout=10)
        lines += rest.split()
        changed = [int(line.split()[1]) for line in lines if line.startswith("changed ")]
        last = max(changed, default=-1)
        before = current if last < 0 else order[last % 2]
        after = order[(last + 1) % 2]
        works = working_passwords(tmp_path, sorted({initial, *PASSWORDS}))
        context = f"seed {seed}, run {run}, killed in change {last + 1}"
        assert works in ([before], [after]), context
        assert (run == 0 and last < 0) or initial not in works, context
        current = works[0]
