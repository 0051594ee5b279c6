"""Password rules, argon2id hashes and random passwords: the pure parts of logging in.

Theory of operation:
- ``check_password`` applies one of two policies and reports every problem at once, as
  sentences a page can show; a password is never part of a message.
- Every password is normalised to Unicode NFKC before it is checked or hashed (NIST SP
  800-63B §5.1.1.2), so the same text typed on two keyboards that compose accents differently
  gives the same hash.
- Hashes are argon2id strings in PHC format; they carry their own parameters, so raising the
  cost later only needs ``needs_rehash`` at the next successful login.
- ``PasswordHasher.verify`` answers False for a wrong password and for a stored string that
  is not a usable argon2id hash: a damaged account store must fail closed, never raise into
  the login page or let a hash with absurd parameters exhaust the memory.

Where the guide is silent, and where we go beyond it:
- Characters outside the guide's four classes (``$``, the backslash, accented and other
  non-ASCII letters) are allowed but count for no class. Counting only what the guide lists
  keeps every accepted password valid under the guide's own rule, which is what an auditor
  checks.
- Leading or trailing whitespace is refused: it is invisible, and copy-paste, password
  managers and some clients trim it, so its owner would be locked out. Spaces inside count as
  specials, as in the guide.
- Control characters are refused: they cannot be typed on a login page.
- At least ``MIN_DISTINCT_CHARACTERS`` different characters, and not one run of consecutive
  characters: "aaaaaaaa…", "Ab1!Ab1!" and "abcdefghijklmnopq" get no protection from their
  length (NIST SP 800-63B lists repetitive and sequential passwords among those to refuse).
- A common password dressed up with digits or symbols at either end ("Welcome2024!") is
  refused like the common password itself: a composition rule invites exactly that.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import secrets
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from panelhub.errors import WeakPasswordError

#: The guide's special characters for user passwords. "$" and "\" are not in it.
GUIDE_SPECIALS: Final = frozenset(" !\"#%&'()*+,-./:;<=>?@[]^_`{|}~")
#: A user name shorter than this is found inside too many good passwords to be refused there.
MIN_USER_NAME_LENGTH_CHECKED: Final = 3
#: Fewer different characters than this makes the length worthless ("aaaaaaaa", "Ab1!Ab1!").
MIN_DISTINCT_CHARACTERS: Final = 5
#: A dressed-up password is compared with the list only when this much of it is left: shorter
#: cores ("abc" in "abc2024!") would refuse too many good passwords.
MIN_COMMON_CORE_LENGTH: Final = 4
#: What people add around a common word to pass a composition rule ("!Welcome2024?").
_DECORATION: Final = string.digits + string.punctuation + " "
#: Where the common-password list lives inside the package.
COMMON_PASSWORDS_RESOURCE: Final = ("data", "common-passwords.txt")

# argon2id parameters: OWASP Password Storage Cheat Sheet's first choice (m = 19 MiB, t = 2,
# p = 1), also SECURITY.md's floor: 18 ms per hash on the development machine (AMD EPYC).
DEFAULT_MEMORY_COST_KIB: Final = 19_456
DEFAULT_TIME_COST: Final = 2
DEFAULT_PARALLELISM: Final = 1
DEFAULT_SALT_LENGTH: Final = 16
DEFAULT_HASH_LENGTH: Final = 32
#: A stored hash asking for more than this is treated as corrupt: verifying it would take the
#: memory or time of the whole device (1 GiB, 64 passes, 16 lanes).
MAX_MEMORY_COST_KIB: Final = 1_048_576
MAX_TIME_COST: Final = 64
MAX_PARALLELISM: Final = 16

# Random passwords: classes without look-alikes (0/O/o, 1/l/I) and specials without space,
# quotes or "|", so a password printed on a console can be read and typed back.
_GENERATED_UPPER: Final = "".join(c for c in string.ascii_uppercase if c not in "IO")
_GENERATED_LOWER: Final = "".join(c for c in string.ascii_lowercase if c not in "lo")
_GENERATED_DIGITS: Final = "23456789"
_GENERATED_SPECIALS: Final = "!#%&*+-=?@^_~"
_GENERATED_CLASSES: Final = (
    _GENERATED_UPPER,
    _GENERATED_LOWER,
    _GENERATED_DIGITS,
    _GENERATED_SPECIALS,
)
#: A generated password must pass both policies: NIST's minimum length, the guide's maximum.
MIN_GENERATED_LENGTH: Final = 15
MAX_GENERATED_LENGTH: Final = 50


@dataclass(frozen=True, slots=True)
class _Limits:
    min_length: int
    max_length: int
    min_classes: int


class PasswordPolicy(StrEnum):
    """Which rule new passwords follow; the values are the configuration's names."""

    #: The vendor guide: 8-50 characters, three of four character classes.
    GUIDE = "guide"
    #: NIST SP 800-63B: length is what counts (15-128 characters), no composition rule.
    NIST = "nist"

    @property
    def min_length(self) -> int:
        return _LIMITS[self].min_length

    @property
    def max_length(self) -> int:
        return _LIMITS[self].max_length


_LIMITS: Final = {
    PasswordPolicy.GUIDE: _Limits(min_length=8, max_length=50, min_classes=3),
    PasswordPolicy.NIST: _Limits(min_length=15, max_length=128, min_classes=0),
}


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _character_classes(password: str) -> int:
    return sum(
        (
            any(c in string.ascii_uppercase for c in password),
            any(c in string.ascii_lowercase for c in password),
            any(c in string.digits for c in password),
            any(c in GUIDE_SPECIALS for c in password),
        )
    )


@functools.cache
def common_passwords() -> frozenset[str]:
    """The packaged list of common passwords, case-folded; read once per process."""
    resource = importlib.resources.files("panelhub.security").joinpath(*COMMON_PASSWORDS_RESOURCE)
    lines = resource.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().casefold() for line in lines if line.strip() and not line.startswith("#")
    )


def _is_run(password: str) -> bool:
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(password)}
    return steps in ({1}, {-1})


def _is_common(folded: str) -> bool:
    return folded in common_passwords()


def _is_dressed_up_common(folded: str) -> bool:
    core = folded.strip(_DECORATION)
    return core != folded and len(core) >= MIN_COMMON_CORE_LENGTH and _is_common(core)


def _form_problems(password: str, limits: _Limits) -> Iterator[str]:
    if len(password) < limits.min_length:
        yield f"use at least {limits.min_length} characters"
    if len(password) > limits.max_length:
        yield f"use at most {limits.max_length} characters"
    if password[:1].isspace() or password[-1:].isspace():
        yield "do not start or end the password with a space"
    if any(unicodedata.category(c) in {"Cc", "Cs"} for c in password):
        yield "use only characters that can be typed (no control characters)"
    if _character_classes(password) < limits.min_classes:
        yield "use at least three of: upper case, lower case, digits, special characters"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        yield f"use at least {MIN_DISTINCT_CHARACTERS} different characters"
    elif _is_run(password):
        yield "do not use a run of consecutive characters such as abcd or 4321"


def _guessable_problems(password: str, user_name: str) -> Iterator[str]:
    folded = password.casefold()
    if _is_common(folded):
        yield "this password is among the most common ones"
    elif _is_dressed_up_common(folded):
        yield "this is a common password with digits or symbols added: choose another"
    name = _normalize(user_name).casefold()
    if len(name) >= MIN_USER_NAME_LENGTH_CHECKED and name in folded:
        yield "do not use your user name"


def check_password(password: str, *, user_name: str, policy: PasswordPolicy) -> None:
    """Refuse a new password that breaks ``policy`` or the rules both policies share.

    Raises:
        WeakPasswordError: with one sentence per problem, in a stable order.
    """
    normalized = _normalize(password)
    problems = (
        *_form_problems(normalized, _LIMITS[policy]),
        *_guessable_problems(normalized, user_name),
    )
    if problems:
        raise WeakPasswordError(problems)


def _encode(password: str) -> bytes:
    # "surrogatepass": a lone surrogate cannot come from a valid form, but verify must still
    # answer False for it rather than raise UnicodeEncodeError into the login page.
    return _normalize(password).encode("utf-8", "surrogatepass")


class PasswordHasher:
    """argon2id hashing with PanelHub's parameters; the only place that reads a stored hash.

    Lower costs are for tests only: production builds it with the defaults.
    """

    def __init__(
        self,
        *,
        memory_cost_kib: int = DEFAULT_MEMORY_COST_KIB,
        time_cost: int = DEFAULT_TIME_COST,
        parallelism: int = DEFAULT_PARALLELISM,
        salt_length: int = DEFAULT_SALT_LENGTH,
        hash_length: int = DEFAULT_HASH_LENGTH,
    ) -> None:
        self._wanted = argon2.Parameters(
            type=argon2.Type.ID,
            version=argon2.low_level.ARGON2_VERSION,
            salt_len=salt_length,
            hash_len=hash_length,
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
        )
        self._hasher = argon2.PasswordHasher.from_parameters(self._wanted)
        # Made now, not at the first unknown name, which would then take two hashes' time.
        self._dummy_hash = self.hash(secrets.token_urlsafe(32))

    def hash(self, password: str) -> str:
        """A new PHC string with a fresh random salt: two hashes of one password differ."""
        return self._hasher.hash(_encode(password))

    def verify(self, stored_hash: str, password: str) -> bool:
        """True only if ``password`` matches; False for a mismatch or an unusable hash.

        argon2 compares the digests in constant time.
        """
        if _parameters(stored_hash) is None:
            return False
        try:
            return self._hasher.verify(stored_hash, _encode(password))
        except (VerificationError, InvalidHashError):  # a mismatch, or damaged salt or digest
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when ``stored_hash`` is weaker than what this hasher makes now.

        Only a rise counts: a hash made with more memory or passes than today's settings is
        kept, so a mistaken lower setting never weakens stored hashes. An unusable hash also
        answers True, but it can never be verified, so it is never replaced from a login.
        """
        stored = _parameters(stored_hash)
        if stored is None:
            return True
        wanted = self._wanted
        return (
            stored.version < wanted.version
            or stored.memory_cost < wanted.memory_cost
            or stored.time_cost < wanted.time_cost
            or stored.salt_len < wanted.salt_len
            or stored.hash_len < wanted.hash_len
        )

    def dummy_verify(self, password: str) -> None:
        """Spend the time of one real verification, for a user name that does not exist.

        Without it, an unknown name answers faster than a known one with a wrong password,
        and the timing lists which accounts exist. The dummy hash matches no password.
        """
        self.verify(self._dummy_hash, password)


def _parameters(stored_hash: str) -> argon2.Parameters | None:
    """The parameters of a usable argon2id hash, or None for anything else."""
    # argon2-cffi parses "m=١٩" (Arabic digits) and then fails to encode the hash as ASCII;
    # the C library stops at a NUL, so "<hash>\0<junk>" would verify like "<hash>".
    if not (stored_hash.isascii() and stored_hash.isprintable()):
        return None
    try:
        parameters = argon2.extract_parameters(stored_hash)
    except InvalidHashError:
        return None
    is_usable = (
        parameters.type is argon2.Type.ID
        and 1 <= parameters.memory_cost <= MAX_MEMORY_COST_KIB
        and 1 <= parameters.time_cost <= MAX_TIME_COST
        and 1 <= parameters.parallelism <= MAX_PARALLELISM
    )
    return parameters if is_usable else None


def _generated_candidate(length: int) -> str:
    # One character of each class first, then any class, then shuffled: all four classes are
    # guaranteed and each position is uniformly drawn from the whole alphabet or a class.
    alphabet = "".join(_GENERATED_CLASSES)
    characters = [secrets.choice(group) for group in _GENERATED_CLASSES]
    characters += [secrets.choice(alphabet) for _ in range(length - len(characters))]
    secrets.SystemRandom().shuffle(characters)
    return "".join(characters)


def _passes_every_policy(password: str, user_name: str) -> bool:
    try:
        for policy in PasswordPolicy:
            check_password(password, user_name=user_name, policy=policy)
    except WeakPasswordError:
        return False
    return True


def generate_password(length: int = 16, *, user_name: str = "") -> str:
    """A random password that passes both policies, easy to read from a console.

    With 69 symbols, 16 characters carry about 97 bits. A candidate that happens to contain
    ``user_name`` (or to break any other rule) is drawn again.

    Raises:
        ValueError: ``length`` is outside what both policies accept.
    """
    if not MIN_GENERATED_LENGTH <= length <= MAX_GENERATED_LENGTH:
        raise ValueError(
            f"a generated password has {MIN_GENERATED_LENGTH} to {MAX_GENERATED_LENGTH} "
            f"characters, not {length}"
        )
    while True:
        candidate = _generated_candidate(length)
        if _passes_every_policy(candidate, user_name):
            return candidate
