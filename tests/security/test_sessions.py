"""Sessions: unguessable ids kept only as hashes, timeouts, ending them, bounded memory."""

from __future__ import annotations

import hashlib

import pytest

from panelhub.security import sessions
from panelhub.security.sessions import Session, SessionStore
from tests.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def new(store: SessionStore, account_id: int = 1, name: str = "alice") -> str:
    session_id, _ = store.create(account_id=account_id, user_name=name, role="admin",
                                 source="127.0.0.1", must_change_password=False)  # fmt: skip
    return session_id


def live(store: SessionStore, session_id: str) -> Session:
    session = store.get(session_id)
    assert session is not None
    return session


def test_ids_are_256_bit_random_and_stored_only_as_hashes(clock):
    store = SessionStore(clock=clock)
    ids = {new(store, account) for account in range(50)}
    assert len(ids) == 50
    assert all(len(i) >= 43 for i in ids)  # 32 bytes in URL-safe base64
    for session in store.list():
        assert session.key not in ids
    some = next(iter(ids))
    assert live(store, some).key == hashlib.sha256(some.encode()).hexdigest()


def test_idle_timeout_restarts_on_each_use(clock):
    store = SessionStore(idle_timeout_s=900, absolute_timeout_s=43_200, clock=clock)
    session_id = new(store)
    for _ in range(5):
        clock.now += 899
        assert store.get(session_id) is not None
    clock.now += 900
    assert store.get(session_id) is None
    assert store.get(session_id) is None  # gone for good


def test_absolute_timeout_ends_even_a_busy_session(clock):
    store = SessionStore(idle_timeout_s=900, absolute_timeout_s=3_600, clock=clock)
    session_id = new(store)
    for _ in range(4):
        clock.now += 700
        assert store.get(session_id) is not None
    clock.now += 700  # 3,500 s in, used just now
    assert store.get(session_id) is not None
    clock.now += 100
    assert store.get(session_id) is None


def test_end_user_ends_other_sessions_and_can_keep_one(clock):
    store = SessionStore(clock=clock)
    mine = [new(store, 1) for _ in range(3)]
    other = new(store, 2, "bob")
    keep = live(store, mine[0])
    assert store.end_user(1, keep_key=keep.key) == 2
    assert store.get(mine[0]) is not None
    assert store.get(mine[1]) is None
    assert store.get(mine[2]) is None
    assert store.get(other) is not None


def test_logout_and_admin_end(clock):
    store = SessionStore(clock=clock)
    first, second = new(store), new(store)
    store.end(first)
    assert store.get(first) is None
    key = live(store, second).key
    assert store.end_key(key) is not None
    assert store.get(second) is None


def test_csrf_token_is_per_session_and_checked_in_constant_time(clock):
    store = SessionStore(clock=clock)
    one, two = live(store, new(store)), live(store, new(store))
    assert one.csrf_token != two.csrf_token
    assert one.check_csrf(one.csrf_token)
    assert not one.check_csrf(two.csrf_token)
    assert not one.check_csrf("")


def test_role_changes_reach_live_sessions(clock):
    store = SessionStore(clock=clock)
    session_id = new(store)
    store.update_user(1, role="viewer", must_change_password=True)
    session = live(store, session_id)
    assert (session.role, session.must_change_password) == ("viewer", True)


def test_memory_is_bounded_per_user_and_in_total(clock, monkeypatch):
    store = SessionStore(clock=clock)
    first = new(store)
    for _ in range(sessions.MAX_SESSIONS_PER_USER):
        new(store)
    assert store.get(first) is None  # the oldest of that user went first
    assert len(store.list()) == sessions.MAX_SESSIONS_PER_USER
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 40)
    for account in range(100, 140):
        new(store, account, f"user{account}")
    assert len(store.list()) == 40
