"""The user's catalogue: models.toml in the config directory adds models and overrides shipped
ones field by field (wanvid.catalogue); a bad file is one line naming the file, the entry and
the field (exit 2); an unknown model is refused with the closest names and the file's path."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result
from wanvid.catalogue import merge, read_user_file
from wanvid.errors import BadInputError
from wanvid.models import find_model

Run = Callable[..., Result]

HH11 = """
[[model]]
name = "happyhorse-1.1-i2v"
protocol = "media"
resolutions = ["720P", "1080P"]
default_resolution = "1080P"
durations = "3..15"
audio_mode = "always"
regions = ["intl", "cn"]
source = "my notes"
"""


def user_file(text: str) -> Path:
    p = Path(os.environ["WANVID_CONFIG_DIR"]) / "models.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def models_json(run: Run) -> dict[str, dict[str, object]]:
    r = run(["models", "--json"])
    assert r.code == 0, r.err
    return {m["name"]: m for m in json.loads(r.out)["data"]}


def test_path_is_beside_config_toml(run: Run) -> None:
    r = run(["models", "--path"])
    assert r.code == 0
    assert r.out.strip() == str(Path(os.environ["WANVID_CONFIG_DIR"]) / "models.toml")
    assert "does not exist yet" in r.err
    r = run(["models", "--path", "--json"])
    assert json.loads(r.out)["data"]["exists"] is False


def test_a_user_model_is_added_and_marked(run: Run) -> None:
    user_file(HH11)
    got = models_json(run)
    hh = got["happyhorse-1.1-i2v"]
    assert hh["origin"] == "user" and hh["protocol"] == "media"
    assert hh["durations"] == list(range(3, 16)) and hh["default_duration"] == 5
    assert hh["media"] == ["first_frame"]
    assert got["wan2.7-i2v"]["origin"] == "shipped"
    r = run(["models"])
    line = next(x for x in r.out.splitlines() if x.startswith("happyhorse-1.1-i2v"))
    assert line.split()[-1] == "user"


def test_a_new_models_unwritten_limits_are_not_enforced(run: Run) -> None:
    user_file(HH11)
    m = find_model("happyhorse-1.1-i2v")
    assert m is not None
    lim = m.image_limits
    assert lim.max_px is None and lim.min_px is None and lim.max_bytes is None
    assert {"prompt_max", "fps", "image_max_px"} <= set(m.unconfirmed)
    assert m.regions == ("intl", "cn")


def test_an_override_changes_only_the_fields_it_gives(run: Run) -> None:
    shipped = models_json(run)["wan2.1-i2v-plus"]
    user_file('[[model]]\nname = "WANX2.1-I2V-PLUS"\ntemplates = ["flying", "squish", "rotate"]\n')
    got = models_json(run)["wan2.1-i2v-plus"]
    assert got["origin"] == "user-override"
    assert got["templates"] == ["flying", "squish", "rotate"]
    assert {k: v for k, v in got.items() if k not in ("templates", "origin")} == \
        {k: v for k, v in shipped.items() if k not in ("templates", "origin")}


def test_an_entry_pasted_from_json_loads(run: Run) -> None:
    entry = models_json(run)["wan2.2-i2v-plus"]
    entry["name"] = "my-model-i2v"
    entry["aliases"] = []
    import tomli_w

    user_file(tomli_w.dumps({"model": [entry]}))
    got = models_json(run)["my-model-i2v"]
    assert got["origin"] == "user" and got["resolutions"] == entry["resolutions"]


def test_the_file_is_read_again_when_it_changes(run: Run) -> None:
    user_file(HH11)
    assert "happyhorse-1.1-i2v" in models_json(run)
    p = user_file(HH11.replace("happyhorse-1.1-i2v", "happyhorse-1.2-i2v") + "\n# longer\n")
    os.utime(p, ns=(1, 1))
    got = models_json(run)
    assert "happyhorse-1.2-i2v" in got and "happyhorse-1.1-i2v" not in got


@pytest.mark.parametrize("body, msg", [
    ('[[model]]\nname = "x"\nprotocl = "i2v"\n',
     "model 'x': unknown field 'protocl' (did you mean 'protocol'?)"),
    ('[[model]]\nname = "wan2.6-i2v"\nprompt_max = "abc"\n',
     "model 'wan2.6-i2v': field 'prompt_max' must be a whole number >= 0, not the string"),
    ('[[model]]\nname = "wan2.6-i2v"\nregions = "cn"\n',
     "model 'wan2.6-i2v': field 'regions' must be a list of strings"),
    ('[[model]]\nname = "wan2.6-i2v"\nwatermark_default = 1\n',
     "model 'wan2.6-i2v': field 'watermark_default' must be true or false"),
    ('[[model]]\nname = "x"\nprotocol = "i2v"\nresolutions = ["720P"]\ndurations = "9..3"\n',
     "model 'x': field 'durations' must be a list or a range like \"2..15\""),
    ('[[model]]\nname = "x"\nprotocol = "i2v"\nresolutions = ["720P"]\ndurations = [5]\n'
     'image_min_px = 900\nimage_max_px = 100\n',
     "model 'x': field 'image_min_px' (900) is above 'image_max_px' (100)"),
    ('[[model]]\nname = "wan2.6-i2v"\nconcurrent_tasks = 0\n',
     "model 'wan2.6-i2v': field 'concurrent_tasks' must be between 1 and 1000"),
    ('[[model]]\nname = "x"\nprotocol = "zzz"\nresolutions = ["720P"]\ndurations = [5]\n',
     "model 'x': field 'protocol' must be one of i2v, kf2v, media"),
    ('[[model]]\nname = "x"\nprotocol = "i2v"\ndurations = [5]\n',
     "model 'x': field 'resolutions' is missing"),
    ('[[model]]\nname = "wan2.6-i2v"\nresolutions = ["720P"]\n',
     "model 'wan2.6-i2v': field 'default_resolution' '1080P' is not in 'resolutions'"),
    ('[[model]]\nname = "x"\nprotocol = "i2v"\nresolutions = ["720P"]\ndurations = [5]\n'
     'aliases = ["wan2.6-i2v"]\n', "model 'x': field 'aliases': 'wan2.6-i2v' is already"),
    ('[[model]]\nname = "x\\u001b[2J"\n', "field 'name' must be letters"),
    ('[[model]]\nprotocol = "i2v"\n', "model #1: field 'name' is missing"),
    ('[[model]]\nname = "wan2.6-i2v"\nfps = 1\n[[model]]\nname = "WAN2.6-I2V"\nfps = 2\n',
     "model 'WAN2.6-I2V': defined twice in the file"),
    ('[models]\nx = 1\n', "unknown table or key 'models'"),
    ("[[model]\n", "not valid TOML"),
    # hostile: a range of a billion seconds, nesting that recurses, a pace of 1e-300/s
    ('[[model]]\nname = "x"\nprotocol = "i2v"\nresolutions = ["720P"]\n'
     'durations = "1..999999999"\n', "at most 600 s"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("x = " + "{a=" * 5000 + "1" + "}" * 5000 + "\n", "nested too deeply"),
    ('[[model]]\nname = "wan2.2-i2v-flash"\nsubmits_per_second = 1e-300\n',
     "field 'submits_per_second' must be between 0.01 and 1000"),
])
def test_a_bad_file_is_one_line_naming_file_entry_and_field(run: Run, body: str,
                                                             msg: str) -> None:
    p = user_file(body)
    for args in (["models"], ["submit", "https://example.com/a.png", "-p", "x", "--dry-run"]):
        r = run(args)
        assert r.code == 2, (args, r.err)
        assert r.out == ""
        assert r.err.startswith(f"wanvid: error: {p}: "), r.err
        assert msg in r.err
        assert r.err.count("\n") == 1 and "Traceback" not in r.err
        assert "\x1b" not in r.err


def test_a_bad_file_in_json_mode_is_an_error_envelope(run: Run) -> None:
    user_file('[[model]]\nname = "x"\nprotocl = "i2v"\n')
    r = run(["models", "--json"])
    assert r.code == 2
    env = json.loads(r.out)
    assert env["ok"] is False and "unknown field 'protocl'" in env["errors"][0]["message"]


def test_a_fifo_is_refused_without_blocking(run: Run) -> None:
    p = Path(os.environ["WANVID_CONFIG_DIR"])
    p.mkdir(parents=True, exist_ok=True)
    os.mkfifo(p / "pipe")
    (p / "models.toml").symlink_to("pipe")
    r = run(["models"])
    assert r.code == 2 and "not a regular file" in r.err


def test_a_symlink_to_a_file_is_followed(run: Run, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles-models.toml"
    real.write_text(HH11, encoding="utf-8")
    p = Path(os.environ["WANVID_CONFIG_DIR"])
    p.mkdir(parents=True, exist_ok=True)
    (p / "models.toml").symlink_to(real)
    assert models_json(run)["happyhorse-1.1-i2v"]["origin"] == "user"
    assert json.loads(run(["models", "--path", "--json"]).out)["data"]["symlink"] is True


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    p = tmp_path / "models.toml"
    with open(p, "wb") as f:
        f.truncate(2 * 1024 * 1024)
    with pytest.raises(BadInputError, match="at most 1024 KiB"):
        read_user_file(p)
    assert read_user_file(tmp_path / "none.toml") is None


def test_unknown_model_names_the_closest_and_the_file(run: Run) -> None:
    r = run(["submit", "https://example.com/a.png", "-p", "x", "-m", "happyhorse-1.1",
             "--dry-run"])
    assert r.code == 2 and r.out == ""
    path = Path(os.environ["WANVID_CONFIG_DIR"]) / "models.toml"
    assert r.err.startswith("wanvid: error: --model: unknown model 'happyhorse-1.1'; did you "
                            "mean happyhorse-1.0-i2v")
    assert str(path) in r.err and "[[model]]" in r.err


def test_a_user_model_is_sent_as_the_catalogue_says(run: Run) -> None:
    user_file(HH11)
    r = run(["submit", "https://example.com/a.png", "-p", "x", "-m", "happyhorse-1.1-i2v",
             "--dry-run", "--json"])
    assert r.code == 0, r.err
    body = json.loads(r.out)["data"]["body"]
    assert body["model"] == "happyhorse-1.1-i2v"
    assert body["input"]["media"] == [{"type": "first_frame", "url": "https://example.com/a.png"}]
    assert body["parameters"] == {"resolution": "1080P", "duration": 5}


def test_merge_is_field_level_and_keeps_order() -> None:
    shipped: list[dict[str, object]] = [{"name": "a", "fps": 24, "aliases": ["old-a"]},
                                        {"name": "b", "fps": 30}]
    out = merge(shipped, [{"name": "OLD-A", "fps": 25},
                          {"name": "c", "protocol": "i2v", "resolutions": ["720P"],
                           "durations": [4]}], "u.toml")
    assert [(e["name"], o) for e, o in out] == [("a", "user-override"), ("b", "shipped"),
                                                 ("c", "user")]
    assert out[0][0] == {"name": "a", "fps": 25, "aliases": ["old-a"]}
    assert out[2][0]["default_duration"] == 4 and out[2][0]["default_resolution"] == "720P"


def test_readmes_example_entry_adds_happyhorse_1_1(run: Run) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Your own models", 1)[1]
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    user_file(toml)
    got = models_json(run)["happyhorse-1.1-i2v"]
    assert got["origin"] == "user" and got["protocol"] == "media"
    r = run(["submit", "https://example.com/a.png", "-p", "x", "-m", "happyhorse-1.1-i2v",
             "--dry-run"])
    assert r.code == 0, r.err
