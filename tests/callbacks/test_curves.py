"""callbacks.curves: curves.png and curves.csv for any logger, TensorBoard's forgetting layout and
HParams without a placeholder hp_metric, and the closing table of a fit."""

import csv
import json
from pathlib import Path

import pytest
import yaml

import train
from callbacks.curves import LISTEN, closing_table, curves_figure, curves_table, forgetting_layout, shard_tags
from tests.helpers import shard_config

CONDITIONS = {"interleaved": "val", "noninterleaved": "val/noninterleaved", "text": "val/text"}
PAPER = {"identity", "synonym", "hypernym"}  # the tasks a SHARD file without pairs asks
HISTORY = [{"epoch": 0, "metrics": {"val/shard/synonym/f1": 0.4, "val/identity/accuracy": 0.0, "val/text/shard/synonym/f1": 0.3}},
           {"epoch": 1, "metrics": {"val/shard/synonym/f1": 0.1, "val/identity/accuracy": 0.25}}]  # fmt: skip


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def test_the_forgetting_layout_puts_each_measure_of_every_condition_on_one_chart():
    charts = forgetting_layout(CONDITIONS, PAPER)["forgetting"]
    assert charts["synonym F1"] == [
        "Multiline",
        ["val/shard/synonym/f1", "val/noninterleaved/shard/synonym/f1", "val/text/shard/synonym/f1"],
    ]
    assert charts["identity accuracy"] == [
        "Multiline",
        ["val/identity/accuracy", "val/noninterleaved/identity/accuracy"],
    ]
    assert "identity accuracy" not in forgetting_layout(CONDITIONS, PAPER - {"identity"})["forgetting"]
    assert "val/text/identity/accuracy" not in shard_tags(
        CONDITIONS, PAPER
    ) and "val/shard/hypernym/unparsed" in shard_tags(CONDITIONS, PAPER)


def test_the_pair_task_gets_its_chart_and_tags_where_a_condition_asks_it():
    assert "pair F1" not in forgetting_layout(CONDITIONS, PAPER)["forgetting"]
    assert not any("/pair/" in tag for tag in shard_tags(CONDITIONS, PAPER))
    charts = forgetting_layout(CONDITIONS, PAPER | {"pair"})["forgetting"]
    assert charts["pair F1"] == [
        "Multiline",
        ["val/shard/pair/f1", "val/text/shard/pair/f1"],
    ]  # LTU's layout holds one clip
    tags = shard_tags(CONDITIONS, PAPER | {"pair"})
    assert "val/shard/pair/unparsed" in tags and "val/text/shard/pair/f1" in tags
    assert "val/noninterleaved/shard/pair/f1" not in tags
    # a run whose own layout is LTU's asks no pair query, so it gets no pair chart
    assert "pair F1" not in forgetting_layout({"noninterleaved": "val"}, PAPER | {"pair"})["forgetting"]


def test_probes_get_a_does_it_listen_chart_panel_tags_and_columns_and_none_without_probes():
    conditions = {
        "interleaved": "val",
        "text": "val/text",
        "silence": "val/silence",
        "question_end": "val/question_end",
    }
    charts = forgetting_layout(conditions, PAPER, ("silence", "question_end"))["forgetting"]
    assert charts[LISTEN] == [
        "Multiline",
        [
            "val/silence/shard/synonym/agreement",
            "val/silence/shard/hypernym/agreement",
            "val/silence/identity/agreement",
            "val/question_end/shard/synonym/agreement",
            "val/question_end/shard/hypernym/agreement",
            "val/question_end/identity/agreement",
        ],
    ]
    assert "val/silence/shard/synonym/f1" in charts["synonym F1"][1]  # a clip probe asks under the main layout
    assert LISTEN not in forgetting_layout(conditions, PAPER)["forgetting"]
    tags = shard_tags(conditions, PAPER, ("silence",))
    assert "val/silence/identity/agreement" in tags and "val/silence/shard/hypernym/unparsed" in tags
    assert not any(t.endswith("/agreement") for t in shard_tags(conditions, PAPER))
    history = [
        {
            "epoch": 0,
            "metrics": {
                "val/shard/synonym/f1": 0.5,
                "val/silence/shard/synonym/f1": 0.4,
                "val/silence/shard/synonym/agreement": 0.75,
            },
        }
    ]
    rows = curves_table(history, {"interleaved": "val", "silence": "val/silence"}, ("silence",))
    assert rows[1]["synonym_agreement"] == 0.75 and rows[0]["synonym_agreement"] is None
    assert "synonym_agreement" not in curves_table(history, {"interleaved": "val", "silence": "val/silence"})[0]
    figure = curves_figure(history, {"interleaved": "val", "silence": "val/silence"}, ("silence",))
    assert [ax.get_title() for ax in figure.axes][-1].startswith(LISTEN)
    assert (
        len(figure.axes) == 3
        and len(curves_figure(history, {"interleaved": "val", "silence": "val/silence"}).axes) == 2
    )


def test_the_table_and_the_closing_text_hold_every_point():
    rows = curves_table(HISTORY, {"interleaved": "val", "text": "val/text"})
    assert rows[0] == {
        "epoch": 0,
        "condition": "interleaved",
        "synonym_f1": 0.4,
        "hypernym_f1": None,
        "identity_accuracy": 0.0,
    }
    assert len(rows) == 4 and rows[3]["synonym_f1"] is None
    text = closing_table(HISTORY, {"interleaved": "val", "text": "val/text"})
    assert "interleaved prompts" in text and "text-only control" in text
    assert "0.400" in text and "0.250" in text and "0.300" in text


@pytest.mark.slow
def test_a_csv_logger_alone_gets_the_curves_files_and_the_fit_ends_with_the_table(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    config = shard_config(
        tmp_path,
        small_dataset,
        tiny_model_kwargs,
        max_steps=-1,
        max_epochs=1,
        logger={
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(tmp_path / "runs"), "name": "t"},
        },
    )
    train.cli(["fit", "--config", str(config)])
    (version,) = sorted((tmp_path / "runs" / "t").glob("version_*"))
    png = version / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((version / "curves.csv").open()))
    assert [(r["epoch"], r["condition"]) for r in rows] == [
        (e, c) for e in ("0", "1") for c in ("interleaved", "noninterleaved", "text")
    ]
    assert all(0.0 <= float(r["synonym_f1"]) <= 1.0 for r in rows)
    out = capsys.readouterr().out
    assert "SHARD and identity, epoch 0 to 1" in out and f"curves: {png}" in out
    assert "text-only control" in out.split("SHARD and identity")[-1]


@pytest.mark.slow
def test_tensorboard_gets_the_layout_and_hparams_and_no_placeholder_metric(tmp_path, small_dataset, tiny_model_kwargs):
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs)
    data = yaml.safe_load(config.read_text())
    data["trainer"]["logger"]["init_args"]["default_hp_metric"] = False
    config.write_text(yaml.safe_dump(data))
    shard = Path(data["trainer"]["callbacks"][-1]["init_args"]["shard_file"])
    with shard.open("a") as out:  # one two-clip query (issue 19): the layout gets its chart
        out.write(
            json.dumps(
                {
                    "id": "pair/0",
                    "task": "pair",
                    "label": "Siren",
                    "word": "siren",
                    "candidate": "sine wave",
                    "truth": "no",
                    "audio": "audio/c1.wav",
                    "other_audio": "audio/c0.wav",
                }
            )
            + "\n"
        )
    train.cli(["validate", "--config", str(config)])

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2

    (version,) = sorted((tmp_path / "runs" / "t").glob("version_*"))
    events = EventAccumulator(str(version), size_guidance={"tensors": 0}).Reload()
    assert "hp_metric" not in events.Tags()["scalars"]
    assert "val/curves" in events.Tags()["images"] and (version / "curves.png").is_file()
    assert "custom_scalars__config__" in events.Tags()["tensors"]
    (layout,) = events.Tensors("custom_scalars__config__")
    charts = {
        c.title: list(c.multiline.tag)
        for cat in layout_pb2.Layout.FromString(layout.tensor_proto.string_val[0]).category
        for c in cat.chart
    }
    assert charts["pair F1"] == ["val/shard/pair/f1", "val/text/shard/pair/f1"]  # LTU's layout asks no pair query
    assert {"val/shard/pair/f1", "val/text/shard/pair/f1"} <= set(events.Tags()["scalars"])
    assert "val/noninterleaved/shard/pair/f1" not in events.Tags()["scalars"]
    plugin = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/experiment"]).experiment
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {"val/shard/synonym/f1", "val/identity/accuracy", "val/text/shard/hypernym/f1"} <= metric_tags
    hparams = {h.name for h in experiment.hparam_infos}
    assert {"model/learning_rate", "model/lora_r", "data/batch_size", "data/max_length"} <= hparams


def test_the_pair_curve_is_drawn_and_tabled_only_where_it_was_measured():
    """Issue 19: the two-clip task's F1 joins the curves when the SHARD file asks it."""
    from callbacks.curves import curves_figure

    conditions = {"interleaved": "val", "noninterleaved": "val/noninterleaved"}
    history = [
        {"epoch": e, "metrics": {"val/shard/synonym/f1": 0.5, "val/shard/pair/f1": [0.2, 0.3][e]}} for e in range(2)
    ]
    rows = curves_table(history, conditions)
    assert [r["pair_f1"] for r in rows] == [0.2, None, 0.3, None]  # epoch by epoch; LTU's layout has none
    assert "pair F1" in closing_table(history, conditions) and "0.300" in closing_table(history, conditions)
    labels = [line.get_label() for line in curves_figure(history, conditions).axes[0].get_lines()]
    assert labels == ["synonym F1", "pair F1"]
    assert "pair_f1" not in curves_table(HISTORY, {"interleaved": "val"})[0]
