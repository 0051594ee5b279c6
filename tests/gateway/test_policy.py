import pytest

from panelhub.config.models import ListenerConfig
from panelhub.gateway.policy import Policy


def policy(**kwargs) -> Policy:
    return Policy(ListenerConfig(name="l", **kwargs))


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("10.0.0.1", False),
     ("::ffff:127.0.0.1", True), ("not-an-ip", False)],
)  # fmt: skip
def test_default_allow_list_is_loopback_only(address, allowed):
    assert policy().allows_client(address) is allowed


def test_empty_allow_list_refuses_everyone():
    assert not policy(allow_clients=()).allows_client("127.0.0.1")


def test_read_only_refuses_every_write_code():
    p = policy(is_read_only=True)
    for code in (5, 6, 8, 15, 16, 21, 22, 23):
        refusal = p.check_request(1, code)
        assert refusal is not None
        assert "read-only" in refusal.reason
    for code in (1, 2, 3, 4, 43):
        assert p.check_request(1, code) is None


def test_function_code_and_unit_allow_lists():
    p = policy(allow_function_codes=(3, 4), allow_unit_ids=(1, 2))
    assert p.check_request(1, 3) is None
    assert p.check_request(1, 6) is not None
    refusal = p.check_request(9, 3)
    assert refusal is not None
    assert "unit 9" in refusal.reason


@pytest.mark.parametrize("address", ["192.0.2.5", "::ffff:192.0.2.5"])
def test_ipv4_mapped_network_in_the_allow_list_admits_its_clients(address):
    # A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; either spelling in the
    # allow-list must admit them, and nothing outside the network.
    p = policy(allow_clients=("::ffff:192.0.2.0/120",))
    assert p.allows_client(address)
    assert not p.allows_client("192.0.3.5")
    assert not p.allows_client("::ffff:192.0.3.5")
