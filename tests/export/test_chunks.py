from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from panelhub.export.chunks import chunks


@given(st.lists(st.text(max_size=30)), st.integers(min_value=1, max_value=100))
def test_chunks_keep_every_character_in_order_and_stay_bounded(lines, max_chars) -> None:
    joined = list(chunks(lines, max_chars=max_chars))

    assert "".join(joined) == "".join(lines)
    assert all(len(chunk) < max_chars + 30 for chunk in joined)
    assert all(chunk for chunk in joined[:-1])
