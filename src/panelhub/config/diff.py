"""What changed between two ``Settings``, named the way the file names it.

The audit log records these names for each settings change (never values: a value could one
day be a secret, and the names are what an auditor asks about). Items of the lists are named
by their key (``listeners.scada.allow_clients``, ``routes.100``) rather than their position,
so removing the first listener does not read as every listener changed.
"""

from __future__ import annotations

from typing import Any, Final

from panelhub.config.models import Settings

#: The key that names each item of a list section.
ITEM_KEYS: Final = {"listeners": "name", "buses": "name", "routes": "unit_id", "devices": "name"}


def changed_settings(old: Settings, new: Settings) -> list[str]:
    """Dotted names of the settings that differ, in file order; empty when none does."""
    before = old.model_dump(mode="json")
    after = new.model_dump(mode="json")
    changes: list[str] = []
    for section in after:
        if section in ITEM_KEYS:
            changes += _list_changes(section, before[section], after[section], ITEM_KEYS[section])
        else:
            changes += _value_changes(section, before[section], after[section])
    return changes


def _value_changes(name: str, old: object, new: object) -> list[str]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[str] = []
        for key in new:
            changes += _value_changes(f"{name}.{key}", old.get(key), new[key])
        return changes
    return [name]


def _list_changes(
    section: str, old: list[dict[str, Any]], new: list[dict[str, Any]], key: str
) -> list[str]:
    before = {str(item[key]): item for item in old}
    after = {str(item[key]): item for item in new}
    changes: list[str] = []
    for name, item in after.items():
        if name not in before:
            changes.append(f"{section}.{name} (added)")
        else:
            changes += _value_changes(f"{section}.{name}", before[name], item)
    changes += [f"{section}.{name} (removed)" for name in before if name not in after]
    return changes
