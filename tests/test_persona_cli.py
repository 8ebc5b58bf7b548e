"""``talker persona``: create from a description (real voice ranking), list, show, render, delete."""

from __future__ import annotations

import argparse
import json

import av
import pytest
from conftest import media

from talker.cli_persona import add_persona_parser, main
from tools.fakechat import FakeChatServer


def test_parser_plugs_into_a_main_parser():
    ap = argparse.ArgumentParser(prog="talker")
    sub = ap.add_subparsers(dest="command", required=True)
    add_persona_parser(sub)
    args = ap.parse_args(["persona", "render", "abc", "--text", "hi", "--out", "x.mp4"])
    assert args.persona_command == "render" and args.id == "abc" and callable(args.func)


def test_sea_captain_end_to_end(tmp_path, capsys):
    """The acceptance case: the voice matches the description (ranking printed), then a video renders."""
    d = str(tmp_path)
    assert main(["persona", "--data-dir", d, "create", "--description", "a cheerful old sea captain"]) == 0
    out = capsys.readouterr().out
    assert "voice ranking for 'a cheerful old sea captain'" in out
    lines = [ln for ln in out.splitlines() if ln.startswith(" *")]
    assert len(lines) == 1 and "male, old" in lines[0]  # the chosen voice: an old man's
    assert "expression  happy 0.5; idle calm" in out

    assert main(["persona", "--data-dir", d, "list", "--json"]) == 0
    (persona,) = json.loads(capsys.readouterr().out)
    assert persona["name"] == "Cheerful Old Sea Captain"
    assert persona["voice_id"] in lines[0]

    video = tmp_path / "captain.mp4"
    args = ["persona", "--data-dir", d, "render", persona["id"], "--text", "Ahoy! Welcome aboard.", "--size", "128"]
    assert main(args + ["--out", str(video)]) == 0
    assert "as Cheerful Old Sea Captain" in capsys.readouterr().out
    with av.open(str(video)) as c:
        assert c.streams.video[0].codec_context.width == 128 and c.streams.audio
        assert c.duration and c.duration / 1e6 > 1.0

    assert main(["persona", "--data-dir", d, "show", persona["id"]]) == 0
    assert persona["id"] in capsys.readouterr().out
    assert main(["persona", "--data-dir", d, "delete", persona["id"]]) == 0
    assert main(["persona", "--data-dir", d, "show", persona["id"]]) == 2
    assert "no persona with id" in capsys.readouterr().err


def test_points_and_reply_to_a_chat(tmp_path, capsys):
    d = str(tmp_path)
    reply = "Meow. I would like some fish, please."
    with FakeChatServer(reply, token_delay_s=0.01) as srv:
        rc = main(
            [
                "persona", "--data-dir", d, "create", "--keywords",
                "--description", "a lazy cat", "--image", str(media("nonhuman", "chelsea_cat.png")),
                "--points", "170,115;320,137;263,248;232,280;292,283",
                "--chat-base-url", srv.base_url, "--chat-model", "catgpt",
            ]
        )  # fmt: skip
        assert rc == 0
        pid = capsys.readouterr().out.split("created persona ")[1].split()[0]
        video = tmp_path / "cat.mp4"
        rc = main(
            ["persona", "--data-dir", d, "render", pid, "--reply-to", "Hungry?", "--size", "128", "--out", str(video)]
        )
        assert rc == 0
    out = capsys.readouterr().out
    assert "Lazy Cat: Meow." in out and "Lazy Cat: I would like some fish, please." in out
    assert srv.requests[0]["model"] == "catgpt"
    assert (
        srv.requests[0]["messages"][0]["role"] == "system" and "Lazy Cat" in srv.requests[0]["messages"][0]["content"]
    )
    assert video.is_file()


def test_errors_exit_2_with_one_line(tmp_path, capsys):
    d = str(tmp_path)
    assert main(["persona", "--data-dir", d, "create", "--keywords"]) == 2
    assert "needs --description, --image, or both" in capsys.readouterr().err
    cat = str(media("nonhuman", "chelsea_cat.png"))
    assert main(["persona", "--data-dir", d, "create", "--keywords", "--image", cat]) == 2
    assert "--points" in capsys.readouterr().err
    assert main(["persona", "--data-dir", d, "create", "--keywords", "--image", cat, "--points", "1,2"]) == 2
    assert "expected 5" in capsys.readouterr().err
    rc = main(
        ["persona", "--data-dir", d, "create", "-d", "x", "--facegen-model", str(tmp_path / "none"), "--keywords"]
    )
    assert rc == 2
    assert "model_index.json" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", [["list"], ["show", "zzz"], ["delete", "zzz"], ["render", "zzz", "--text", "hi"]])
def test_reading_commands_create_no_data_folder(tmp_path, capsys, cmd):
    d = tmp_path / "data"
    rc = main(["persona", "--data-dir", str(d)] + cmd)
    assert rc == (0 if cmd == ["list"] else 2)
    assert not d.exists()
