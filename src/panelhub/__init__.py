"""PanelHub: an open-source, secure panel server (Modbus gateway, datalogger, energy server)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("panelhub")
except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
    __version__ = "0.0.0"
