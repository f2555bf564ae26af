"""The synthesizer's vocabulary file (search_router.pipeline.queries.vocabulary)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from search_router.pipeline.queries.vocabulary import BUILTIN, DATA_FILE, load_vocabulary


def packaged() -> dict[str, Any]:
    return json.loads(resources.files("search_router.pipeline.queries").joinpath(DATA_FILE).read_text("utf-8"))


def test_the_packaged_file_loads_with_every_built_in_channel_and_category() -> None:
    assert set(BUILTIN.heads) == {"visual", "audio", "transcription", "metadata"}
    assert list(BUILTIN.templates) == [
        "visual_dominant",
        "audio_dominant",
        "transcription_dominant",
        "metadata_dominant",
        "balanced",
        "complex",
    ]
    assert load_vocabulary(json.dumps(packaged())) == BUILTIN


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["templates"]["complex"].append({"pattern": "{v_nothing}", "uses": ["visual"]}), "v_nothing"),
        (lambda d: d["templates"]["complex"].append({"pattern": "{v_person}", "uses": ["mood"]}), "built-in channels"),
        (lambda d: d["templates"].update(mood_dominant=d["templates"]["complex"]), "unknown template categories"),
        (lambda d: d["vocabulary"]["v_person"].append(" padded "), "surrounding spaces"),
        (lambda d: d.update(vocabulary={}), "vocabulary must be a non-empty object"),
    ],
)
def test_a_malformed_file_is_refused_with_what_is_wrong(edit: Any, message: str) -> None:
    data = packaged()
    edit(data)
    with pytest.raises(ValueError, match=message):
        load_vocabulary(json.dumps(data))
