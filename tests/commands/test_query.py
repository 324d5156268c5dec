"""``seld query``: a planted frame comes first from an index of ``seld embed``; a checkpoint that did not
make the index is refused by name; class queries through a MiniLM fine-tune give the class's track or
"no match"."""
from __future__ import annotations

import json

import h5py
import pytest

from seld.cli import main
from seld.data.audio import AudioConfig, load_stereo
from seld.decoding import decode_output
from seld.inference import InferenceOptions, predict_recording
from seld.query import class_track, sentence_embedder
from seld.tasks.loading import load_task
from seld.text.captions import stored_events
from tests.commands.conftest import minilm_finetuned_checkpoint
from tests.train.conftest import pretrained_checkpoint

QUERY = "a woman speaking on the left, far away"


@pytest.fixture(scope="module")
def minilm_ckpt(tmp_path_factory):
    return minilm_finetuned_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def planted_index(minilm_ckpt, audio_dir, tmp_path_factory):
    """An index of the MiniLM fine-tune whose frame 7 of ``two`` is the query's own embedding."""
    ckpt = minilm_ckpt
    index = tmp_path_factory.mktemp("index") / "emb.h5"
    assert main(["embed", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(index), "--no-progress"]) == 0
    query = sentence_embedder(load_task(ckpt).task)([QUERY])[0].numpy()
    with h5py.File(index, "r+") as f:
        f["two"][7] = 2.0 * query
    return ckpt, index


def test_query_index_returns_the_planted_frame_first(planted_index, tmp_path, capsys):
    ckpt, index = planted_index
    out = tmp_path / "answer.json"
    assert main(["query", "--index", str(index), "--text", QUERY, "--top", "3", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f'query: "{QUERY}" (113 frames of 2 recording(s)')
    assert lines[3].split()[:4] == ["1", "two", "7", "0.7-0.8"]
    answer = json.loads(out.read_text(encoding="utf-8"))
    assert answer["query"] == QUERY and answer["n_frames"] == 113 and answer["checkpoint"] == str(ckpt.resolve())
    first = answer["frames"][0]
    assert (first["clip"], first["start_frame"], first["end_frame"]) == ("two", 7, 8)
    assert first["score"] == pytest.approx(1.0, abs=1e-5)
    print("planted 1.0; next best frames", [round(h["score"], 3) for h in answer["frames"][1:]])
    assert answer["frames"][1]["score"] < 0.95  # the other frames are not ties of the planted one
    assert len(answer["frames"]) == 3 and [c["clip"] for c in answer["clips"]][0] == "two"
    # the events are the model's decoded output at that frame, and the caption their sentence
    with h5py.File(index, "r") as f:
        output = f["outputs"]["two"][()]
    want = stored_events(decode_output(output))
    assert [(e["class_idx"], e["azimuth_deg"]) for e in first["events"]] == [
        (e.class_idx, e.azimuth) for e in want if e.frame == 7]
    assert first["caption"].endswith(".")


def test_query_with_another_checkpoint_is_refused_by_name(planted_index, tmp_path_factory, capsys):
    ckpt, index = planted_index
    other = pretrained_checkpoint(tmp_path_factory)
    assert main(["query", "--index", str(index), "--text", QUERY, "--checkpoint", str(other)]) == 1
    err = capsys.readouterr().err
    assert str(other) in err and str(ckpt.resolve()) in err and "is not the one that made" in err


def test_query_needs_one_mode(capsys):
    assert main(["query", "--text", "where is the phone?"]) == 1
    assert "either --index" in capsys.readouterr().err
    assert main(["query", "--text", "where is the phone?", "--audio", "x.wav"]) == 1
    assert "--audio needs --checkpoint" in capsys.readouterr().err


def test_query_audio_gives_the_named_class_track(minilm_ckpt, audio_dir, tmp_path, capsys):
    out = tmp_path / "track.json"
    args = ["query", "--checkpoint", str(minilm_ckpt), "--audio", str(audio_dir), "--text", "where is the phone?",
            "--threshold", "0.1", "--json", str(out)]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    assert '"where is the phone?" -> telephone' in stdout
    answer = json.loads(out.read_text(encoding="utf-8"))
    assert answer["class"] == "telephone" and answer["class_idx"] == 3 and answer["score"] >= answer["threshold"]
    model = load_task(minilm_ckpt)
    n_track = 0
    for rec in answer["recordings"]:
        audio = load_stereo(rec["audio"], AudioConfig(clip_samples=0))
        want = class_track(predict_recording(model, audio, InferenceOptions(threshold=0.1)), 3, threshold=0.1)
        assert [(t["frame"], t["source"], t["azimuth_deg"], round(t["distance_m"] * 100)) for t in rec["track"]] == [
            (e.frame, e.source, e.azimuth, e.distance_cm) for e in want]
        assert all(t["class"] == "telephone" for t in rec["track"])
        n_track += len(want)
    assert n_track > 0  # the one-step model predicts telephone somewhere at this threshold
    assert [r["frames"] for r in answer["recordings"]] == [50, 63]


def test_query_naming_no_class_says_no_match(minilm_ckpt, audio_dir, tmp_path, capsys):
    out = tmp_path / "none.json"
    args = ["query", "--checkpoint", str(minilm_ckpt), "--audio", str(audio_dir), "--text",
            "what is the weather like tomorrow?", "--json", str(out)]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith('no match: "what is the weather like tomorrow?" names none of the 13 classes')
    answer = json.loads(out.read_text(encoding="utf-8"))
    assert answer["class"] is None and answer["class_idx"] is None and answer["recordings"] is None
    assert answer["score"] < answer["threshold"] == pytest.approx(0.35)
