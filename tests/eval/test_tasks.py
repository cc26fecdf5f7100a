"""interleave.eval.tasks: the task and condition registry, and the one pair of tag functions.

The proof of issue 25's point 1: a yes/no task and a condition registered in the test alone are
evaluated, logged under their tags, charted in TensorBoard's layout and tabled by `interleave report`."""

from __future__ import annotations

import json

import pytest

from interleave.eval.query import Query
from interleave.eval.tasks import (
    CONDITIONS,
    TASKS,
    VERDICT,
    Condition,
    Tag,
    Task,
    condition_prefix,
    metric_tag,
    parse_tag,
    prompt_table,
    register,
    registered,
)

OPPOSITE = Task(
    "opposite",
    {
        "interleaved": "Is [AUDIO] the opposite of {candidate}?",
        "noninterleaved": "Is the sound in this audio the opposite of {candidate}?",
        "at_end": "Is this sound the opposite of {candidate}? [AUDIO]",
    },
    VERDICT,
    chart="opposite F1",
    column="Opp",
)
AT_END = Condition("at_end", "at_end", "audio at the end")  # a placement: its own prompt layout


def test_tags_are_made_and_read_back_by_one_pair_of_functions():
    assert metric_tag(condition_prefix("interleaved", "interleaved"), "synonym", "f1") == "val/shard/synonym/f1"
    assert metric_tag(condition_prefix("text", "interleaved"), "identity", "accuracy") == "val/text/identity/accuracy"
    assert metric_tag("val/noninterleaved", "pair", "scored_f1") == "val/noninterleaved/shard/pair/scored_f1"
    for tag in (
        "val/shard/synonym/f1",
        "val/identity/accuracy",
        "val/text/shard/pair/unparsed",
        "val/noninterleaved/identity/accuracy",
        "val/at_end/shard/hypernym/scored_accuracy",
    ):
        parsed = parse_tag(tag)
        assert parsed is not None
        prefix = "val" if parsed.condition is None else f"val/{parsed.condition}"
        assert metric_tag(prefix, parsed.task, parsed.metric) == tag
    assert parse_tag("val/noninterleaved/identity/accuracy") == Tag("noninterleaved", "identity", "accuracy")
    assert [parse_tag(t) for t in ("val/loss", "val/label_accuracy", "train/loss", "epoch", "val/x/y")] == [None] * 5


def test_which_condition_asks_what_and_how_it_renders():
    syn = Query("s", "synonym", "Siren", "siren", "a.wav", "alarm", "yes")
    pair = Query("p", "pair", "Siren", "siren", "a.wav", "dog", "no", other_audio="b.wav")
    ident = Query("i", "identity", "Siren", "siren", "a.wav")
    table = prompt_table()
    assert [CONDITIONS[c].asks(TASKS["pair"]) for c in ("interleaved", "noninterleaved", "text")] == [True, False, True]
    assert not CONDITIONS["text"].asks(TASKS["identity"])
    assert CONDITIONS["text"].render(pair, table) == "Is siren the same kind of sound as dog?"
    assert CONDITIONS["noninterleaved"].render(syn, table).endswith("similar to alarm?")
    assert CONDITIONS["text"].queries([ident, syn, syn, pair]) == [syn, pair]


def test_registration_is_refused_twice_and_undone_after_the_block():
    with registered(OPPOSITE, AT_END):
        assert "opposite" in TASKS and "at_end" in CONDITIONS
        with pytest.raises(ValueError, match="already registered"):
            register(OPPOSITE)
        assert prompt_table()["opposite"]["at_end"].endswith("[AUDIO]")
    assert "opposite" not in TASKS and "at_end" not in CONDITIONS


@pytest.mark.slow
def test_a_task_and_a_condition_registered_here_are_evaluated_logged_charted_and_reported(
    tmp_path, small_dataset, tiny_model_kwargs, monkeypatch
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    import train
    from interleave.tools.report import cli as report
    from tests.helpers import run_dir, shard_config

    monkeypatch.setattr("sys.argv", ["train.py"])
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, {"extra_layouts": ["noninterleaved", "at_end"]})
    shard = small_dataset / "shard.jsonl"
    opposite = [
        {
            "id": f"opposite/{i}/{c}",
            "task": "opposite",
            "label": label,
            "word": word,
            "candidate": c,
            "truth": truth,
            "audio": f"audio/c{i}.wav",
        }
        for i, label, word in ((0, "Sine wave", "sine wave"), (1, "Siren", "siren"))
        for c, truth in (("silence", "yes"), ("tone", "no"))
    ]
    shard.write_text(shard.read_text() + "".join(json.dumps(q) + "\n" for q in opposite))

    with registered(OPPOSITE, AT_END):
        train.cli(["validate", "--config", str(config)])
        run = run_dir(tmp_path)
        rows = [json.loads(line) for line in (run / "predictions" / "epoch=00.jsonl").read_text().splitlines()]
        asked = {(r["condition"], r["task"]) for r in rows}
        assert {
            ("interleaved", "opposite"),
            ("noninterleaved", "opposite"),
            ("at_end", "opposite"),
            ("text", "opposite"),
        } <= asked
        assert {task for condition, task in asked if condition == "at_end"} == {
            "opposite"
        }  # no other task has that layout
        assert (
            next(r for r in rows if r["condition"] == "at_end")["prompt"]
            == "Is this sound the opposite of silence? [AUDIO]"
        )
        assert next(r for r in rows if r["condition"] == "text" and r["task"] == "opposite")["prompt"] == (
            "Is sine wave the opposite of silence?"
        )

        metrics = json.loads((run / "predictions" / "epoch=00.metrics.json").read_text())
        tags = {
            "val/shard/opposite/f1",
            "val/noninterleaved/shard/opposite/f1",
            "val/at_end/shard/opposite/f1",
            "val/text/shard/opposite/f1",
            "val/at_end/shard/opposite/unparsed",
        }
        assert tags <= set(metrics)
        events = EventAccumulator(str(run), size_guidance={"tensors": 0}).Reload()
        assert tags <= set(events.Tags()["scalars"])
        (layout,) = events.Tensors("custom_scalars__config__")
        charts = {
            c.title: list(c.multiline.tag)
            for cat in layout_pb2.Layout.FromString(layout.tensor_proto.string_val[0]).category
            for c in cat.chart
        }
        assert charts["opposite F1"] == [
            "val/shard/opposite/f1",
            "val/noninterleaved/shard/opposite/f1",
            "val/at_end/shard/opposite/f1",
            "val/text/shard/opposite/f1",
        ]
        assert "val/at_end/shard/opposite/f1" in charts["opposite F1"]

        out = tmp_path / "report"
        assert report.main([str(run), "--out", str(out), "--bootstrap", "20"]) == 0
        table = [line.split(" | ") for line in (out / "report.md").read_text().splitlines() if line.startswith("| ")]
        header = [cell.strip("| ") for cell in table[0]]
        assert "Opp F1" in header and "Text Opp F1" in header
        by_condition = {row[header.index("Condition")]: row for row in table[2:]}
        assert set(by_condition) == {"interleaved", "noninterleaved", "at_end"}
        expected = f"{100 * metrics['val/at_end/shard/opposite/f1']:.1f}"
        assert by_condition["at_end"][header.index("Opp F1")].startswith(expected)
    assert "opposite" not in TASKS and "at_end" not in CONDITIONS
