"""``panelhub.modbus.__all__`` lists every public name of the package namespace, sorted."""

from __future__ import annotations

import re
import types

import panelhub.modbus


def _public_names() -> set[str]:
    return {
        name
        for name, value in vars(panelhub.modbus).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def _isort_style_key(name: str) -> tuple[int, list[object]]:
    """The order ruff's RUF022 keeps ``__all__`` in, so this test and the linter agree.

    SCREAMING_SNAKE_CASE first, then CamelCase, then the rest; a natural sort inside each group.
    """
    if name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return group, natural


def test_all_is_complete():
    assert set(panelhub.modbus.__all__) == _public_names()


def test_all_is_sorted_and_unique():
    exported = list(panelhub.modbus.__all__)
    assert exported == sorted(exported, key=_isort_style_key)
    assert len(set(exported)) == len(exported)


def test_sort_key_orders_constants_then_classes_then_functions():
    names = ["decode", "TCPFrame", "NEED_DATA", "Frame10", "Frame2", "FRAME_ENDS_AT_SILENCE"]
    assert sorted(names, key=_isort_style_key) == [
        "FRAME_ENDS_AT_SILENCE",
        "NEED_DATA",
        "Frame2",
        "Frame10",
        "TCPFrame",
        "decode",
    ]


def test_every_exported_name_exists():
    for name in panelhub.modbus.__all__:
        assert hasattr(panelhub.modbus, name)
