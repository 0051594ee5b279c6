"""The PanelHub exception tree: one root, and a class for each thing a user must act on.

::

    PanelHubError
    ├─ ConfigError                      the configuration file is missing or invalid
    │  └─ SettingsApplyError            valid settings that cannot be saved or put in force
    │     └─ SettingsConflictError      someone else changed the settings meanwhile
    ├─ StateStoreError                  the state database is missing, damaged or too new
    ├─ AccountError                     an account change or check that cannot be done
    ├─ CertificateError                 a TLS certificate or key that cannot be used
    ├─ WeakPasswordError                a new password breaks the password policy
    ├─ TemplateError                    a device template (model) file or form is invalid
    ├─ DeviceError                      a device cannot be added, found or identified
    │  └─ DiscoveryCancelledError       a discovery run was cancelled by its user
    ├─ DatalogStoreError                the time-series database is missing, damaged or full
    ├─ BundleError                      an update bundle refused: ``reason`` says why
    ├─ IntegrityError                   the installed code does not match its signed manifest
    ├─ BackupError                      a backup that cannot be made or restored
    └─ ModbusError
       ├─ ProtocolError
       │  ├─ LocalProtocolError         we were asked to build a frame the protocol forbids
       │  └─ RemoteProtocolError        a peer sent bytes that are not a valid frame
       │     └─ IllegalRequestError     a well-framed request a server must refuse
       ├─ ModbusExceptionError          a server answered with a Modbus exception response
       └─ TransportError
          ├─ ConnectError               the downstream link could not be opened
          ├─ ConnectionLostError        the link broke while a transaction was under way
          ├─ ResponseTimeoutError       the downstream device did not answer in time
          ├─ BusBusyError               the bus queue is full (Modbus exception 0x06 upstream)
          └─ RequestExpiredError        the request outlived its time-to-live: never answered

Exceptions carry structured attributes and a plain sentence; third-party and OS errors are
mapped to these once, at the transport boundary.
"""

from __future__ import annotations


class PanelHubError(Exception):
    """Root of every error PanelHub raises on purpose."""


class ConfigError(PanelHubError):
    """The configuration cannot be used; ``problems`` lists each one with its location."""

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class SettingsApplyError(ConfigError):
    """Settings could not be saved or put in force; the file and the gateway are unchanged."""


class SettingsConflictError(SettingsApplyError):
    """The change was made on settings that another change has replaced since: redo it."""


class StateStoreError(PanelHubError):
    """The state database (accounts, audit log) cannot be used; ``path`` says which file.

    Logins then fail closed: the console recovery command is the way back.
    """

    def __init__(self, message: str, *, path: object) -> None:
        super().__init__(message)
        self.path = path


class AccountError(PanelHubError):
    """An account operation was refused; the message can be shown to the user as is."""


class CertificateError(PanelHubError):
    """A certificate or key cannot be used; ``reason`` names the rule it breaks.

    ``path`` is the file at fault, or None for material handed in (an upload).
    """

    def __init__(self, message: str, *, reason: str, path: object = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.path = path


class WeakPasswordError(PanelHubError):
    """A new password breaks the password policy; ``problems`` says how, one sentence each.

    The sentences are meant for the change-password page and never quote the password.
    """

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems) or "the password breaks the policy")
        self.problems = problems


class TemplateError(PanelHubError):
    """A device template cannot be used; ``problems`` names each fault with its location.

    A location is ``FILE:LINE`` for a file (or ``LINE`` for text pasted in a form), so the
    author of a custom model finds the offending line at once.
    """

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class DeviceError(PanelHubError):
    """A device cannot be added, reached or identified; the message says which and why."""


class DiscoveryCancelledError(DeviceError):
    """A discovery run stopped because its user cancelled it; what it found so far is kept."""


class DatalogStoreError(PanelHubError):
    """The time-series database cannot be used; ``path`` says which file.

    Polling goes on without storing (samples are counted as lost) until it is usable again.
    """

    def __init__(self, message: str, *, path: object) -> None:
        super().__init__(message)
        self.path = path


class BundleError(PanelHubError):
    """An update bundle was refused before anything on disk changed.

    ``reason`` is a short fixed phrase for the page and the audit record ("wrong signature",
    "older than installed", ...); the message adds the detail (which file, which version).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class IntegrityError(PanelHubError):
    """The installed code differs from its signed manifest; ``problems`` lists each file.

    The service then serves nothing but a page that gives these sentences.
    """

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class BackupError(PanelHubError):
    """A backup cannot be made or restored, and nothing changed.

    ``reason`` is a short fixed phrase ("wrong password or damaged file", "made by an
    incompatible version", ...) for the page and the audit record.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModbusError(PanelHubError):
    pass


class ProtocolError(ModbusError):
    pass


class LocalProtocolError(ProtocolError):
    pass


class RemoteProtocolError(ProtocolError):
    pass


class ModbusExceptionError(ModbusError):
    """A Modbus server answered with an exception response."""

    def __init__(self, *, unit_id: int, function_code: int, exception_code: int) -> None:
        super().__init__(
            f"unit {unit_id} answered function {function_code} with exception "
            f"0x{exception_code:02X}"
        )
        self.unit_id = unit_id
        self.function_code = function_code
        self.exception_code = exception_code


class TransportError(ModbusError):
    """A downstream link failed; ``peer`` names it (host:port or serial device)."""

    def __init__(self, message: str, *, peer: str) -> None:
        super().__init__(message)
        self.peer = peer


class ConnectError(TransportError):
    pass


class ConnectionLostError(TransportError):
    pass


class ResponseTimeoutError(TransportError):
    pass


class BusBusyError(TransportError):
    pass


class IllegalRequestError(RemoteProtocolError):
    """A request a server must refuse with ``exception_code`` (01, 02 or 03)."""

    def __init__(self, message: str, *, exception_code: int) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class RequestExpiredError(TransportError):
    """The request waited longer than its time-to-live; its answer would come too late."""
