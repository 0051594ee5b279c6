"""Password rules, the common-password list, argon2id hashes and random passwords."""

from __future__ import annotations

import base64
import importlib.resources
import re
import string

import argon2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.errors import PanelHubError, WeakPasswordError
from panelhub.security import passwords
from panelhub.security.passwords import (
    GUIDE_SPECIALS,
    PasswordHasher,
    PasswordPolicy,
    check_password,
    common_passwords,
    generate_password,
)

GUIDE = PasswordPolicy.GUIDE
NIST = PasswordPolicy.NIST

TOO_SHORT_GUIDE = "use at least 8 characters"
TOO_SHORT_NIST = "use at least 15 characters"
TOO_LONG_GUIDE = "use at most 50 characters"
TOO_LONG_NIST = "use at most 128 characters"
EDGE_SPACE = "do not start or end the password with a space"
CONTROL = "use only characters that can be typed (no control characters)"
CLASSES = "use at least three of: upper case, lower case, digits, special characters"
DISTINCT = "use at least 5 different characters"
RUN = "do not use a run of consecutive characters such as abcd or 4321"
COMMON = "this password is among the most common ones"
DRESSED_UP = "this is a common password with digits or symbols added: choose another"
USER_NAME = "do not use your user name"
EVERY_MESSAGE = {
    TOO_SHORT_GUIDE,
    TOO_SHORT_NIST,
    TOO_LONG_GUIDE,
    TOO_LONG_NIST,
    EDGE_SPACE,
    CONTROL,
    CLASSES,
    DISTINCT,
    RUN,
    COMMON,
    DRESSED_UP,
    USER_NAME,
}


def problems(password: str, policy: PasswordPolicy, user_name: str = "alice") -> tuple[str, ...]:
    try:
        check_password(password, user_name=user_name, policy=policy)
    except WeakPasswordError as exc:
        return exc.problems
    return ()


@pytest.fixture
def hasher() -> PasswordHasher:
    # Cheap parameters: the tests check behaviour, one test checks the real defaults.
    return PasswordHasher(memory_cost_kib=64, time_cost=1)


# -- the guide's policy


@pytest.mark.parametrize(
    "password",
    [
        "Switchboard-Room7",  # all four classes
        "Kx7#mQ2v",  # exactly 8 characters
        "panel room 42",  # lower case, digits and spaces inside (specials)
        "BREAKER-ROW-9",  # upper case, specials, digits
        "Meter" + "x7#k" * 11 + "Q",  # exactly 50 characters
        "Plc#2024",  # "plc" is listed, but a 3-letter core is too short to count
        "ÉÀÇéàç12#!x",  # accents count for no class; x, digits and specials make three
    ],
)
def test_guide_accepts(password):
    assert problems(password, GUIDE) == ()


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Ab1!xyz", (TOO_SHORT_GUIDE,)),
        ("Meter" + "x7#k" * 11 + "QZ", (TOO_LONG_GUIDE,)),
        ("lowercase letters", (CLASSES,)),
        ("ALLUPPERCASE2024", (CLASSES,)),
        ("ÉÀÇéàç12#!", (CLASSES,)),  # non-ASCII letters are not upper or lower case here
        ("Kassenbuch$$", (CLASSES,)),  # "$" is not among the guide's specials
        (" Switchboard-Room7", (EDGE_SPACE,)),
        ("Switchboard-Room7 ", (EDGE_SPACE,)),
        ("Switchboard-Room7\t", (EDGE_SPACE, CONTROL)),
        ("Switch\x00board-Room7", (CONTROL,)),
        ("Ab1!Ab1!", (DISTINCT,)),
        ("", (TOO_SHORT_GUIDE, CLASSES, DISTINCT)),
    ],
)
def test_guide_refuses(password, expected):
    assert problems(password, GUIDE) == expected


def test_the_guides_special_characters_each_count_as_one_class():
    assert len(GUIDE_SPECIALS) == 31
    for special in sorted(GUIDE_SPECIALS):
        assert problems(f"Kx7{special}mQvw", GUIDE) == (), special
        # upper + lower + special, without a digit, is also three classes
        assert problems(f"Kxy{special}mQvw", GUIDE) == (), special


# -- the NIST policy


@pytest.mark.parametrize(
    "password",
    [
        "coffee mug on the panel roof",  # lower case only: no composition rule
        "fifteen letters",  # exactly 15
        "q" + "wertyuiopasdfgh" * 8 + "jklzxcv",  # exactly 128
    ],
)
def test_nist_accepts(password):
    assert len(password) in {15, 28, 128}
    assert problems(password, NIST) == ()


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Switchboard-Ro7", ()),  # 15: the guide's passwords can be NIST ones too
        ("Switchboard-R7", (TOO_SHORT_NIST,)),
        ("q" + "wertyuiopasdfgh" * 8 + "jklzxcvb", (TOO_LONG_NIST,)),
        ("aaaaaaaaaaaaaaaa", (DISTINCT,)),
        ("abcdefghijklmnopq", (RUN,)),
        ("onmlkjihgfedcba", (RUN,)),
        ("correct horse battery staple", (COMMON,)),
        ("passwordpassword", (COMMON,)),
        ("Schneider123456789!", (DRESSED_UP,)),
    ],
)
def test_nist(password, expected):
    assert problems(password, NIST) == expected


# -- rules both policies share


@pytest.mark.parametrize(
    "password",
    ["Password1", "PASSWORD1!", "Welcome1!", "Qwerty123!", "P@ssw0rd", "Admin@123", "Modbus2024!"],
)
def test_common_passwords_that_pass_the_composition_rule_are_refused(password):
    assert problems(password, GUIDE) == (COMMON,)


@pytest.mark.parametrize("password", ["Schneider2031!", "!!Modbus-7", "1984Welcome?", "Pass 1234"])
def test_a_common_password_with_digits_or_symbols_added_is_refused(password):
    assert problems(password, GUIDE) == (DRESSED_UP,)


@pytest.mark.parametrize(
    ("password", "user_name", "expected"),
    [
        ("Admin-Panel-7", "admin", (USER_NAME,)),
        ("xJEAN-LUCx-99", "Jean-Luc", (USER_NAME,)),  # case-insensitive
        ("Always-Calm-7", "al", ()),  # a 2-letter name is inside too many good passwords
        ("Always-Calm-7", "", ()),
        ("Always-Calm-7", "Calm", (USER_NAME,)),
    ],
)
def test_the_user_name_is_refused(password, user_name, expected):
    assert problems(password, GUIDE, user_name=user_name) == expected


def test_passwords_are_checked_after_nfkc_normalisation():
    # Full-width letters and digits (U+FF01-U+FF5E) are the ASCII ones once normalised.
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "Password1!")
    assert full_width != "Password1!"
    assert problems(full_width, GUIDE) == (COMMON,)


def test_the_error_is_a_panelhub_error_with_a_plain_sentence():
    with pytest.raises(WeakPasswordError) as caught:
        check_password("Ab1!Ab1", user_name="alice", policy=GUIDE)
    assert isinstance(caught.value, PanelHubError)
    assert str(caught.value) == f"{TOO_SHORT_GUIDE}; {DISTINCT}"


@settings(max_examples=300, deadline=None)
@given(password=st.text(max_size=140), policy=st.sampled_from(PasswordPolicy))
def test_messages_come_from_a_fixed_set_and_never_quote_the_password(password, policy):
    # Every sentence is one of a closed set: none can carry the password, and nothing but
    # WeakPasswordError escapes, whatever the text.
    assert set(problems(password, policy)) <= EVERY_MESSAGE


def test_policy_values_are_the_configuration_names():
    assert PasswordPolicy("guide") is GUIDE
    assert PasswordPolicy("nist") is NIST
    assert (GUIDE.min_length, GUIDE.max_length) == (8, 50)
    assert (NIST.min_length, NIST.max_length) == (15, 128)


# -- the common-password list


def test_the_list_is_large_and_holds_the_classics_and_product_defaults():
    listed = common_passwords()
    assert len(listed) >= 1_000
    classics = {"123456", "password", "qwerty", "iloveyou", "admin", "welcome", "azerty"}
    defaults = {"schneider", "panelserver", "modbus", "ecostruxure", "supportuser", "panelhub"}
    assert classics | defaults <= listed
    assert common_passwords() is listed  # loaded once


def test_the_list_holds_many_entries_that_pass_the_composition_rule():
    dressed = [p for p in common_passwords() if passwords._character_classes(p) >= 2]
    # Lower case in the file; "Password1!" differs from "password1!" only by case, which
    # the check ignores, so two classes here is three at the keyboard.
    assert len(dressed) >= 300


def test_the_list_file_is_lower_case_deduplicated_and_commented():
    resource = importlib.resources.files("panelhub.security") / "data" / "common-passwords.txt"
    lines = resource.read_text(encoding="utf-8").splitlines()
    comments = [line for line in lines if line.startswith("#")]
    entries = [line for line in lines if not line.startswith("#")]
    assert comments
    assert all(entry and entry == entry.strip().lower() for entry in entries)
    assert len(entries) == len(set(entries)) == len(common_passwords())


# -- hashes


PHC = re.compile(
    r"^\$argon2id\$v=19\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$(?P<salt>[^$]+)\$(?P<hash>[^$]+)$"
)


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def test_the_default_parameters_are_at_least_the_required_ones():
    stored = PasswordHasher().hash("Switchboard-Room7")
    match = PHC.match(stored)
    assert match is not None
    assert int(match["m"]) >= 19 * 1024
    assert int(match["t"]) >= 2
    assert int(match["p"]) == 1
    assert len(unb64(match["salt"])) == 16
    assert len(unb64(match["hash"])) == 32


def test_hash_and_verify(hasher):
    stored = hasher.hash("Switchboard-Room7")
    assert stored.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert hasher.verify(stored, "Switchboard-Room7")
    assert not hasher.verify(stored, "switchboard-room7")
    assert not hasher.verify(stored, "")


def test_two_hashes_of_one_password_differ(hasher):
    first, second = hasher.hash("Switchboard-Room7"), hasher.hash("Switchboard-Room7")
    assert first != second
    assert hasher.verify(first, "Switchboard-Room7")
    assert hasher.verify(second, "Switchboard-Room7")


def test_composed_and_decomposed_accents_verify_alike(hasher):
    stored = hasher.hash("Caf\u00e9-Tableau-7")
    assert hasher.verify(stored, "Cafe\u0301-Tableau-7")


def test_a_lone_surrogate_is_a_mismatch_not_an_error(hasher):
    stored = hasher.hash("Switchboard-Room7")
    assert not hasher.verify(stored, "\ud800")
    assert hasher.verify(hasher.hash("\ud800x"), "\ud800x")


def corrupt_hashes(hasher: PasswordHasher) -> list[str]:
    good = hasher.hash("Switchboard-Room7")
    head, salt, digest = good.rsplit("$", 2)
    flipped = digest[:5] + ("A" if digest[5] != "A" else "B") + digest[6:]
    return [
        "",
        "garbage",
        "$argon2id$",
        good[:-6],  # truncated digest
        f"{head}${salt}${flipped}",  # altered digest
        f"{head}$!!!!${digest}",  # salt that is not base64
        good.replace("$argon2id$", "$argon2i$"),  # another argon2 variant
        good.replace("$argon2id$", "$argon2d$"),
        good.replace("m=64,", "m=99999999999,"),  # would take all the memory
        good.replace("m=64,", "m=0,"),
        good.replace("t=1,", "t=1000,"),
        good.replace("p=1$", "p=255$"),
        good.replace("m=64,", "m=\u0666\u0664,"),  # Arabic-Indic digits int() accepts
        good.replace("v=19", "v=x"),
        good + "\x00junk",  # the C library would stop at the NUL
        "$pbkdf2-sha256$29000$abc$def",
        "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",  # SHA-256 alone
    ]


def test_a_corrupt_hash_verifies_nothing_and_raises_nothing(hasher):
    for stored in corrupt_hashes(hasher):
        assert hasher.verify(stored, "Switchboard-Room7") is False, stored


@settings(max_examples=200, deadline=None)
@given(stored=st.text(max_size=120), password=st.text(max_size=20))
def test_verify_never_raises_on_arbitrary_text(stored, password):
    assert PasswordHasher(memory_cost_kib=64, time_cost=1).verify(stored, password) is False


@settings(max_examples=100, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_verify_never_raises_on_an_edited_hash(position, replacement):
    hasher = PasswordHasher(memory_cost_kib=64, time_cost=1)
    good = hasher.hash("Switchboard-Room7")
    position %= len(good)
    edited = good[:position] + replacement + good[position + 1 :]
    assert hasher.verify(edited, "Switchboard-Room7") is (edited == good)


def test_needs_rehash_when_parameters_rise(hasher):
    stored = hasher.hash("Switchboard-Room7")
    assert not hasher.needs_rehash(stored)
    assert PasswordHasher(memory_cost_kib=128, time_cost=1).needs_rehash(stored)
    assert PasswordHasher(memory_cost_kib=64, time_cost=2).needs_rehash(stored)
    assert PasswordHasher(memory_cost_kib=64, time_cost=1, salt_length=32).needs_rehash(stored)
    assert PasswordHasher(memory_cost_kib=64, time_cost=1, hash_length=64).needs_rehash(stored)


def test_a_stronger_stored_hash_is_kept(hasher):
    stronger = PasswordHasher(memory_cost_kib=256, time_cost=3).hash("Switchboard-Room7")
    assert not hasher.needs_rehash(stronger)
    assert hasher.verify(stronger, "Switchboard-Room7")


def test_an_old_argon2_version_needs_rehash(hasher):
    old = argon2.low_level.hash_secret(
        b"Switchboard-Room7",
        b"0123456789abcdef",
        time_cost=1,
        memory_cost=64,
        parallelism=1,
        hash_len=32,
        type=argon2.Type.ID,
        version=16,
    ).decode()
    assert "$v=16$" in old
    assert hasher.needs_rehash(old)


def test_a_corrupt_hash_needs_rehash(hasher):
    for stored in corrupt_hashes(hasher)[:3]:
        assert hasher.needs_rehash(stored)


def test_dummy_verify_costs_one_verification_with_the_same_parameters(hasher):
    assert hasher.dummy_verify("Switchboard-Room7") is None
    dummy = argon2.extract_parameters(hasher._dummy_hash)
    real = argon2.extract_parameters(hasher.hash("x"))
    assert dummy == real
    # The dummy hash is not of a guessable text.
    for guess in ("", "x", "password", "Switchboard-Room7"):
        assert not hasher.verify(hasher._dummy_hash, guess)


def test_dummy_verify_does_the_same_work_as_a_real_verification():
    """Same cost parameters as real hashes, and a verification that really runs (no timing
    assertion in CI: the work is checked, not the clock)."""
    hasher = PasswordHasher(memory_cost_kib=2048, time_cost=1)
    stored = hasher.hash("Switchboard-Room7")
    dummy = hasher._dummy_hash
    assert dummy.split("$")[1:4] == stored.split("$")[1:4]  # argon2id, version, m/t/p
    assert not hasher.verify(dummy, "Switchboard-Room7")
    calls: list[str] = []
    original = hasher.verify

    def spy(stored_hash: str, password: str) -> bool:
        calls.append(stored_hash)
        return original(stored_hash, password)

    hasher.verify = spy  # type: ignore[method-assign]
    hasher.dummy_verify("anything")
    assert calls == [dummy]


# -- random passwords


LOOK_ALIKES = set("0Oo1lI") | {" ", '"', "'", "`", "|"}


def test_generated_passwords_pass_both_policies_and_differ():
    generated = [generate_password() for _ in range(500)]
    assert len(set(generated)) == len(generated)
    for password in generated:
        assert len(password) == 16
        assert problems(password, GUIDE, user_name="admin") == ()
        assert problems(password, NIST, user_name="admin") == ()
        assert passwords._character_classes(password) == 4
        assert not LOOK_ALIKES & set(password)
        assert password.isascii()
        assert password.isprintable()


@pytest.mark.parametrize("length", [15, 20, 50])
def test_generated_length(length):
    password = generate_password(length)
    assert len(password) == length
    assert problems(password, GUIDE) == problems(password, NIST) == ()


@pytest.mark.parametrize("length", [0, 14, 51])
def test_generated_length_outside_both_policies_is_refused(length):
    with pytest.raises(ValueError, match="15 to 50"):
        generate_password(length)


def test_a_candidate_holding_the_user_name_is_drawn_again(monkeypatch):
    candidates = iter(["Kx7#admin-Qw3!zzA", "Kx7#mQ2v-Hj4@Np9"])
    monkeypatch.setattr(passwords, "_generated_candidate", lambda length: next(candidates))
    assert generate_password(user_name="Admin") == "Kx7#mQ2v-Hj4@Np9"


def test_generated_passwords_use_every_symbol_of_the_alphabet():
    seen = set("".join(generate_password(50) for _ in range(100)))
    alphabet = set("".join(passwords._GENERATED_CLASSES))
    assert seen == alphabet
    assert alphabet <= set(string.ascii_letters + string.digits) | GUIDE_SPECIALS
