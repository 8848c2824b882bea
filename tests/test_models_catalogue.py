"""The catalogue is data: wanvid/data/models.toml, parsed by wanvid.models.load_catalogue."""

from __future__ import annotations

import pytest

from wanvid.models import CatalogueError, find_model, load_catalogue, model_names


def test_shipped_catalogue_names_each_models_source() -> None:
    for name in model_names():
        m = find_model(name)
        assert m is not None and m.source, name


def test_dated_snapshot_resolves_to_its_model() -> None:
    m = find_model("wan2.2-i2v-flash-2025-07-28")
    assert m is not None and m.name == "wan2.2-i2v-flash"
    assert find_model("wan9-i2v-2026-04-25") is None


def test_catalogue_entry_round_trips() -> None:
    (m,) = load_catalogue(
        '[[model]]\nname = "x-i2v"\nkind = "i2v"\nresolutions = ["720P"]\n'
        'default_resolution = "720P"\ndurations = [3, 4]\ndefault_duration = 3\n'
        'audio = false\nprompt_max = 100\nfps = 24\nregions = ["cn"]\n', "t.toml")
    assert m.durations == (3, 4) and m.regions == ("cn",)
    assert m.path.endswith("video-generation/video-synthesis")


@pytest.mark.parametrize("body, msg", [
    ('[[model]]\nname = "x"\nkindd = "i2v"\n', "t.toml: model 'x': unknown field 'kindd'"),
    ('[[model]]\nname = "x"\nkind = "i2v"\n', "t.toml: model 'x': "),
    ('[[model]]\nname = "x"\nregions = "cn"\n', "t.toml: model 'x': field 'regions' must be a list"),
    ("[[model]\n", "t.toml: not valid TOML"),
])
def test_bad_catalogue_names_file_entry_and_field(body: str, msg: str) -> None:
    with pytest.raises(CatalogueError) as e:
        load_catalogue(body, "t.toml")
    assert str(e.value).startswith(msg)
