"""Properties of the loader: any document gives a template or a TemplateError, and overlaps
are found exactly when two measurements share a register."""

from __future__ import annotations

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from panelhub.devices.loader import parse_template
from panelhub.errors import TemplateError
from panelhub.modbus.datatypes import DataType

scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(["float32", "uint16", "big", "little", "V", "kWh", "counter", "state"]),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=4), scalars, max_size=2),
)
field_names = st.sampled_from(
    ["key", "name", "unit", "address", "function", "type", "word_order", "scale", "kind",
     "invalid", "bit", "equals", "other"]
)  # fmt: skip
tables = st.dictionaries(field_names, values, max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "vendor", "model", "commodity", "defaults", "limits", "x"]),
        values,
        max_size=5,
    ),
    st.lists(tables, max_size=4),
    st.lists(tables, max_size=2),
    st.lists(tables, max_size=2),
)
def test_any_document_gives_a_template_or_a_template_error(top, measurements, alarms, probes):
    document = {**top, "measurements": measurements, "alarms": alarms,
                "identification": {"probe": probes}}  # fmt: skip
    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError):
        return  # not representable in TOML (NaN keys and the like)
    problems: tuple[str, ...] = ()
    try:
        parse_template(text, source="fuzz.toml")
    except TemplateError as exc:
        problems = exc.problems or ("no problems listed",)
    assert all(problem.startswith("fuzz.toml:") for problem in problems)


TYPES = [DataType.UINT16, DataType.FLOAT32, DataType.INT64]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(TYPES)), min_size=1, max_size=8))
def test_overlap_reported_exactly_when_registers_are_shared(layout):
    rows = "".join(
        f'\n[[measurements]]\nkey = "m{n}"\nunit = ""\naddress = {address}\ntype = "{t}"\n'
        for n, (address, t) in enumerate(layout)
    )
    text = 'id = "fuzz"\nvendor = "F"\nmodel = "F"\n' + rows
    used = [set(range(a, a + t.register_count)) for a, t in layout]
    shares = [any(used[i] & used[j] for j in range(len(used)) if j != i) for i in range(len(used))]
    problems: tuple[str, ...] = ()
    try:
        parse_template(text, source="f")
    except TemplateError as exc:
        problems = exc.problems
    assert bool(problems) == any(shares)
    assert all("overlap" in problem for problem in problems)
