"""The models PanelHub knows: built-in templates shipped in the package, plus custom ones.

Custom models live as ``<id>.toml`` files in a directory the administrator's uploads go to. A
custom id may not reuse a built-in one: a device configured with ``model = "eastron-sdm630"``
must mean the same map on every installation.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Final

from panelhub.devices.loader import MAX_TEMPLATE_BYTES, parse_template
from panelhub.devices.template import DeviceTemplate
from panelhub.errors import TemplateError

TEMPLATE_SUFFIX: Final = ".toml"
_PACKAGE: Final = "panelhub.devices.templates"


def _named_after_id(template: DeviceTemplate, file_name: str) -> None:
    if file_name != f"{template.id}{TEMPLATE_SUFFIX}":
        raise TemplateError(
            f"{file_name}: the file of model {template.id!r} must be named "
            f"{template.id}{TEMPLATE_SUFFIX}",
            problems=(f"{file_name}:1: id {template.id!r} does not match the file name",),
        )


@functools.cache
def builtin_templates() -> Mapping[str, DeviceTemplate]:
    """Every template shipped in ``panelhub/devices/templates``, by id (loaded once).

    Raises:
        TemplateError: a shipped file is invalid (a packaging bug: the tests load them all).
    """
    found: dict[str, DeviceTemplate] = {}
    for entry in sorted(resources.files(_PACKAGE).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(TEMPLATE_SUFFIX):
            continue
        template = parse_template(entry.read_text(encoding="utf-8"), source=entry.name)
        _named_after_id(template, entry.name)
        found[template.id] = template
    return MappingProxyType(found)


def parse_custom(text: str, *, source: str) -> DeviceTemplate:
    """Check an uploaded or pasted model: the format's rules plus a free id.

    Raises:
        TemplateError: invalid, or its id is a built-in model's.
    """
    template = parse_template(text, source=source)
    if template.id in builtin_templates():
        raise TemplateError(
            f"{source}: {template.id!r} is a built-in model",
            problems=(f"{source}:1: id {template.id!r} is taken by a built-in model: rename it",),
        )
    return template


def custom_model_id(text: str, source: str) -> str:
    """The id of a custom model, after the checks an upload passes (``parse_custom``)."""
    return parse_custom(text, source=source).id


def _read_limited(path: Path) -> str:
    with path.open("rb") as stream:
        raw = stream.read(MAX_TEMPLATE_BYTES + 1)
    if len(raw) > MAX_TEMPLATE_BYTES:
        raise TemplateError(
            f"{path.name} is larger than {MAX_TEMPLATE_BYTES // 1024} KiB",
            problems=(
                f"{path.name}:1: a template may be at most {MAX_TEMPLATE_BYTES // 1024} KiB",
            ),
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TemplateError(
            f"{path.name} is not UTF-8 text",
            problems=(f"{path.name}:{line}: not UTF-8 text (byte {exc.start})",),
        ) from exc


class TemplateCatalog(Mapping[str, DeviceTemplate]):
    """Built-in and custom models by id; a read-only mapping, loaded once.

    Raises (from the constructor):
        TemplateError: a custom file is invalid, misnamed, or reuses a built-in id; the
            problems of every file are reported together.
    """

    def __init__(self, custom_dir: Path | None = None) -> None:
        self.custom_dir = custom_dir
        custom: dict[str, DeviceTemplate] = {}
        problems: list[str] = []
        paths = sorted(custom_dir.glob(f"*{TEMPLATE_SUFFIX}")) if custom_dir else []
        for path in paths:
            try:
                template = parse_custom(_read_limited(path), source=path.name)
                _named_after_id(template, path.name)
            except TemplateError as exc:
                problems.extend(exc.problems)
                continue
            custom[template.id] = template
        if problems:
            raise TemplateError(
                f"custom models in {custom_dir} are invalid", problems=tuple(problems)
            )
        self._custom = MappingProxyType(custom)
        self._all = {**builtin_templates(), **custom}

    @property
    def custom(self) -> Mapping[str, DeviceTemplate]:
        return self._custom

    def is_builtin(self, template_id: str) -> bool:
        return template_id in builtin_templates()

    def __getitem__(self, template_id: str) -> DeviceTemplate:
        return self._all[template_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)
