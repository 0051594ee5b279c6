"""Built-in templates ship valid; custom models load from a directory and never shadow them."""

from __future__ import annotations

import os
from importlib import resources

import pytest

from panelhub.devices.catalog import TemplateCatalog, builtin_templates, parse_custom
from panelhub.devices.quantities import QUANTITIES
from panelhub.devices.units import UNITS
from panelhub.errors import TemplateError

CUSTOM = """\
id = "acme-m1"
vendor = "Acme"
model = "M1"

[[measurements]]
key = "voltage_l1_n"
unit = "V"
address = 0
"""

SIM_TEMPLATES = {"panelhub-sim-pm3", "panelhub-sim-em1", "panelhub-sim-cb3"}


def test_every_shipped_file_is_a_builtin_template():
    files = {
        entry.name.removesuffix(".toml")
        for entry in resources.files("panelhub.devices.templates").iterdir()
        if entry.name.endswith(".toml")
    }
    assert set(builtin_templates()) == files
    assert files >= SIM_TEMPLATES


def test_builtin_templates_are_loaded_once():
    assert builtin_templates() is builtin_templates()


@pytest.mark.parametrize("template", builtin_templates().values(), ids=builtin_templates().keys())
def test_builtin_template_is_complete(template):
    assert template.vendor
    assert template.model
    assert template.source  # every built-in map cites where it comes from
    identification = template.identification
    assert identification.product_code or identification.vendor_name or identification.probes
    for measurement in template.measurements:
        if measurement.key in QUANTITIES:
            # Same dimension as the catalogue: a kWh register for an energy, not a kW one.
            assert UNITS[measurement.unit].base == QUANTITIES[measurement.key].unit


def test_custom_models_from_a_directory(tmp_path):
    (tmp_path / "acme-m1.toml").write_text(CUSTOM)
    (tmp_path / "notes.txt").write_text("not a template")
    catalog = TemplateCatalog(tmp_path)
    assert set(catalog.custom) == {"acme-m1"}
    assert set(catalog) == set(builtin_templates()) | {"acme-m1"}
    assert len(catalog) == len(builtin_templates()) + 1
    assert catalog["acme-m1"].vendor == "Acme"
    assert catalog.is_builtin("panelhub-sim-pm3")
    assert not catalog.is_builtin("acme-m1")


def test_catalog_without_custom_directory():
    assert dict(TemplateCatalog()) == dict(builtin_templates())


def test_custom_id_may_not_reuse_a_builtin(tmp_path):
    text = CUSTOM.replace('"acme-m1"', '"panelhub-sim-pm3"')
    with pytest.raises(TemplateError) as info:
        parse_custom(text, source="upload")
    assert info.value.problems == (
        "upload:1: id 'panelhub-sim-pm3' is taken by a built-in model: rename it",
    )
    (tmp_path / "panelhub-sim-pm3.toml").write_text(text)
    with pytest.raises(TemplateError, match="custom models in"):
        TemplateCatalog(tmp_path)


def test_custom_file_named_after_its_id(tmp_path):
    (tmp_path / "acme.toml").write_text(CUSTOM)
    with pytest.raises(TemplateError) as info:
        TemplateCatalog(tmp_path)
    assert info.value.problems == ("acme.toml:1: id 'acme-m1' does not match the file name",)


def test_problems_of_every_custom_file_together(tmp_path):
    (tmp_path / "a-bad.toml").write_text(CUSTOM.replace('"V"', '"volt"'))
    (tmp_path / "b-bad.toml").write_bytes(os.urandom(2048))
    (tmp_path / "c-big.toml").write_text(CUSTOM + "#\n" * (150 * 1024))
    with pytest.raises(TemplateError) as info:
        TemplateCatalog(tmp_path)
    a, b, c = info.value.problems
    assert a == "a-bad.toml:7: unknown unit 'volt': see the unit list of the template format"
    assert b.startswith("b-bad.toml:")
    assert c == "c-big.toml:1: a template may be at most 256 KiB"


def test_random_bytes_file_refused_as_not_text(tmp_path):
    (tmp_path / "x.toml").write_bytes(b"id = 1\n\xff\xfe\x00garbage")
    with pytest.raises(TemplateError) as info:
        TemplateCatalog(tmp_path)
    assert info.value.problems == ("x.toml:2: not UTF-8 text (byte 7)",)
