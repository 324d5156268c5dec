"""``seld infer --captions``: captions beside each CSV that say what the CSV says, in the ground truth's words."""
from __future__ import annotations

import json

from seld.cli import main
from seld.data.metadata import read_metadata_csv
from seld.tasks.loading import load_task
from seld.text.sentences import event_frame_sentences
from seld.text.templates import TEMPLATES
from tests.train.conftest import finetuned_checkpoint


def test_infer_captions_say_what_the_csv_says(audio_dir, tmp_path, tmp_path_factory, capsys):
    ckpt = finetuned_checkpoint(tmp_path_factory, "bert", "grep")
    out = tmp_path / "pred"
    args = ["infer", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(out), "--device", "cpu",
            "--threshold", "0.2", "--captions"]
    assert main(args) == 0
    assert "wrote 2 CSV file(s)" in capsys.readouterr().out
    task = load_task(ckpt).task
    n_events = 0
    for stem, frames in (("one", 50), ("two", 63)):
        events = read_metadata_csv(out / f"{stem}.csv", predictions=True)
        n_events += len(events)
        records = [json.loads(line) for line in (out / f"{stem}.captions.jsonl").read_text(encoding="utf-8").splitlines()]
        per_frame = [r for r in records if r["kind"] == "frame"]
        segments = [r for r in records if r["kind"] == "segment"]
        assert [r["start_frame"] for r in per_frame] == list(range(frames))
        want = event_frame_sentences(events, frames, TEMPLATES[task.eval_template], task.text_encoder.tokenizer.fits)
        assert [r["text"] for r in per_frame] == want
        for r in per_frame:
            assert [(e["class_idx"], e["source"], e["azimuth_deg"], round(e["distance_m"] * 100)) for e in r["events"]] == [
                (e.class_idx, e.source, e.azimuth, e.distance_cm) for e in events if e.frame == r["start_frame"]]
        # segments tile the recording; each is a run of one frame sentence
        assert segments[0]["start_frame"] == 0 and segments[-1]["end_frame"] == frames
        assert all(a["end_frame"] == b["start_frame"] and a["text"] != b["text"] for a, b in zip(segments, segments[1:]))
        txt = (out / f"{stem}.captions.txt").read_text(encoding="utf-8").splitlines()
        assert len(txt) == len(segments) and txt[0].endswith(segments[0]["text"])
    assert n_events > 20
    # without the flag, only CSVs
    assert main(["infer", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(tmp_path / "plain")]) == 0
    assert sorted(p.name for p in (tmp_path / "plain").iterdir() if not p.name.startswith((".seld", "infer_manifest"))) == [
        "one.csv", "two.csv"]
