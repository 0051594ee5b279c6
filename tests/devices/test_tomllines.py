"""Line numbers of TOML tables and keys, which tomllib does not report."""

from __future__ import annotations

from panelhub.devices.tomllines import ROOT, LineIndex

TEXT = """\
id = "x"
"quoted key" = 1

[limits]
max_gap = 0

[[measurements]]
key = "a"
invalid = [
  1,
  2,
]

[[ measurements ]]   # spaces inside the brackets are allowed
key = "b"
name = '''
address = 3 inside a string
'''
address = 4

[identification]
[[identification.probe]]
address = 5
"""


def test_keys_and_headers():
    lines = LineIndex(TEXT)
    assert lines.line(ROOT, "id") == 1
    assert lines.line(ROOT, "quoted key") == 2
    assert lines.line(("limits", 0)) == 4
    assert lines.line(("limits", 0), "max_gap") == 5
    assert lines.line(("measurements", 0), "invalid") == 9
    assert lines.line(("measurements", 1)) == 14
    assert lines.line(("measurements", 1), "key") == 15
    assert lines.line(("identification.probe", 0), "address") == 23


def test_missing_key_falls_back_to_its_table_then_to_line_1():
    lines = LineIndex(TEXT)
    assert lines.line(("measurements", 0), "unit") == 7
    assert lines.line(("alarms", 0), "key") == 1


def test_a_key_look_alike_in_a_multiline_string_is_skipped():
    lines = LineIndex(TEXT)
    assert lines.line(("measurements", 1), "address") == 19
    assert lines.line(("measurements", 1), "name") == 16
