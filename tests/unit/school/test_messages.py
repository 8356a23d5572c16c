"""school.messages: a draft cannot carry data that a wire codec cannot encode (issue 10)."""

from __future__ import annotations

from typing import Any

import pytest

from school.messages import Author, Draft
from school.text import TextError

AUTHOR = Author("t-martin", "Mme Martin", "teacher")


def draft(data: dict[str, Any]) -> Draft:
    return Draft("class:cp-a", "id-1", 1, AUTHOR, "post", data)


def test_a_draft_keeps_encodable_data() -> None:
    data = {"text": "Grève", "attachments": [{"size": 2**53 - 1}]}
    assert draft(data).data == data


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"attachments": [{"size": 2**64}]}, "data.attachments[0].size"),
        ({"text": "\ud800"}, "data.text"),
        ({"\udc00": "x"}, "data"),
        ({"ratio": float("nan")}, "data.ratio"),
        ({"blob": b"x"}, "data.blob"),
    ],
)
def test_a_draft_refuses_what_a_codec_cannot_encode(data: dict[str, Any], path: str) -> None:
    with pytest.raises(TextError) as exc:
        draft(data)
    assert exc.value.path == path
