"""configs/paper/: each of the paper's four conditions parses, builds, and (the two LTU rows) evaluates."""

import json
from pathlib import Path

import pytest
import torch
import yaml

import train
from callbacks import ShardEvaluation
from interleave.generation import Sampling
from interleave.model import AudioLLM
from tests.conftest import TINY_ENCODER
from tests.test_ltu import ltu_state_dict
from tests.callbacks.test_shard_eval import ALL_TAGS, write_shard

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper"
CONFIGS = {
    "ltu_noninterleaved.yaml": ("validate", "noninterleaved"),
    "ltu_interleaved.yaml": ("validate", "interleaved"),
    "ft_small.yaml": ("fit", "interleaved"),
    "ft_large.yaml": ("fit", "interleaved"),
}


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def test_the_four_conditions_are_there():
    assert sorted(p.name for p in PAPER.glob("*.yaml")) == sorted(CONFIGS)


def paths_args(root: Path, ltu: Path | str = "/models/ltu.bin", llm: str = "/models/vicuna-7b") -> list[str]:
    return [f"--paths.llm={llm}", f"--paths.ltu_checkpoint={ltu}", f"--paths.shard={root}/shard.jsonl",
            f"--paths.val={root}/val.jsonl", f"--paths.train={root}/train.jsonl", f"--paths.runs={root}/runs"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_parses_with_the_papers_settings(name, tmp_path, capsys):
    command, layout = CONFIGS[name]
    args = [command, "--config", str(PAPER / name), *paths_args(tmp_path), "--print_config"]
    if command == "validate":
        args.remove(f"--paths.train={tmp_path}/train.jsonl")
    with pytest.raises(SystemExit) as done:
        train.cli(args)
    assert done.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    trainer, model, data = config["trainer"], config["model"], config["data"]["init_args"]
    assert config["data"]["class_path"] == "interleave.data.InterleavedDataModule"
    assert (trainer["accelerator"], trainer["devices"], trainer["strategy"], trainer["precision"]) == (
        "gpu", 2, "ddp", "bf16-mixed")
    assert (model["lora_r"], model["lora_alpha"], model["lora_dropout"]) == (8, 16, 0.05)
    assert model["llm"] == "/models/vicuna-7b" and model["ltu_checkpoint"] == "/models/ltu.bin"  # from --paths
    assert model["encoder"] == "cavmae"
    shard = next(c for c in trainer["callbacks"] if c["class_path"] == "callbacks.ShardEvaluation")["init_args"]
    assert shard["layout"] == layout and shard["repeats"] == 4 and shard["shard_file"] == f"{tmp_path}/shard.jsonl"
    if command == "fit":
        assert model["learning_rate"] == 2e-5 and data["batch_size"] == 4
        assert data["train_file"] == f"{tmp_path}/train.jsonl" and shard["every_n_epochs"] == 1
        assert data["train_on_prompt"] is True  # Appendix A: only the audio positions are out of the loss


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_names_the_paths_left_to_set(name, capsys):
    command, _ = CONFIGS[name]
    assert train.main([command, "--config", str(PAPER / name)]) == 2
    assert "paths." in capsys.readouterr().err


def tiny_overrides(tokenizer_dir, tiny_llama_config) -> list[str]:
    """The LLM swapped for a tiny random LLaMA (same family), a tiny encoder, one CPU process."""
    return ["--model.llm=null", f"--model.llm_config={json.dumps(tiny_llama_config)}",
            f"--model.tokenizer={tokenizer_dir}", "--model.encoder=tiny",
            f"--model.encoder_kwargs={json.dumps(TINY_ENCODER)}", "--model.llm_dtype=float32",
            "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto",
            "--trainer.precision=32-true", "--data.num_workers=0"]


@pytest.fixture()
def tiny_ltu(tmp_path, tiny_model_kwargs) -> Path:
    """A tiny checkpoint in LTU's exact key naming, for the tiny model with the paper's LoRA r=8."""
    path = tmp_path / "ltu.bin"
    torch.save(ltu_state_dict(AudioLLM(**{**tiny_model_kwargs, "lora_r": 8, "lora_alpha": 16})), path)
    return path


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_builds_with_a_tiny_llama(name, tmp_path, small_dataset, tiny_ltu, tokenizer_dir, tiny_llama_config):
    _, layout = CONFIGS[name]
    write_shard(small_dataset)
    run = train.cli(["--config", str(PAPER / name), *paths_args(small_dataset, tiny_ltu),
                     *tiny_overrides(tokenizer_dir, tiny_llama_config)], run=False)  # run=False: no subcommand
    assert isinstance(run.model, AudioLLM) and run.model.hparams.lora_r == 8
    (report,) = run.model.checkpoint_reports
    assert report.missing == [] and report.unexpected == [] and report.matched["lora"] > 0
    (shard,) = [c for c in run.trainer.callbacks if isinstance(c, ShardEvaluation)]
    assert shard.layout == layout and shard.repeats == 4
    if CONFIGS[name][0] == "fit":  # a collated fine-tuning batch: every text token is a target
        run.datamodule.setup("fit")  # connected to the model by the command line
        batch = run.datamodule.collator(padding_side="right")([run.datamodule.train_set[i] for i in range(4)])
        out = ~batch["audio_mask"] & batch["attention_mask"].bool()
        assert torch.equal(batch["labels"][out], batch["input_ids"][out])
        assert (batch["labels"][~out] == -100).all() and batch["audio_mask"].sum() == 4 * 32


@pytest.mark.parametrize("name", ["ltu_noninterleaved.yaml", "ltu_interleaved.yaml"])
def test_ltu_rows_evaluate_zero_shot(name, tmp_path, small_dataset, tiny_ltu, tokenizer_dir, tiny_llama_config):
    write_shard(small_dataset)
    args = ["--config", str(PAPER / name), *paths_args(small_dataset, tiny_ltu),
            *tiny_overrides(tokenizer_dir, tiny_llama_config), "--trainer.enable_progress_bar=false"]
    args.remove(f"--paths.train={small_dataset}/train.jsonl")
    run = train.cli(args, run=False)
    (shard,) = [c for c in run.trainer.callbacks if isinstance(c, ShardEvaluation)]
    shard.repeats, shard.sampling = 2, Sampling(max_new_tokens=3)  # the config's are the paper's 4 and 400
    run.trainer.validate(run.model, datamodule=run.datamodule)
    (version,) = (small_dataset / "runs" / Path(name).stem).glob("version_*")
    metrics = json.loads((version / "predictions" / "epoch=00.metrics.json").read_text())
    assert metrics["layout"] == CONFIGS[name][1]
    assert {t for t in ALL_TAGS if not t.startswith("val/noninterleaved/")} <= set(metrics)


SCALE = PAPER.parent / "scale"


@pytest.mark.parametrize("name", ["multinode_ddp.yaml", "fsdp_13b.yaml"])
def test_scale_configs_compose_with_a_paper_config(name, tmp_path, capsys):
    args = ["fit", "--config", str(PAPER / "ft_large.yaml"), "--config", str(SCALE / name),
            *paths_args(tmp_path), "--print_config"]
    with pytest.raises(SystemExit) as done:
        train.cli(args)
    assert done.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    strategy = config["trainer"]["strategy"]
    assert config["model"]["learning_rate"] == 2e-5  # the run's own settings survive
    if name == "fsdp_13b.yaml":
        # FSDP needs a GPU to be built; here the wrap policy must at least name real decoder layers.
        import importlib

        from torch import nn

        assert strategy["class_path"].endswith("FSDPStrategy")
        for dotted in strategy["init_args"]["auto_wrap_policy"] + strategy["init_args"]["activation_checkpointing_policy"]:
            module, _, cls = dotted.rpartition(".")
            assert issubclass(getattr(importlib.import_module(module), cls), nn.Module)
    else:
        assert strategy["class_path"].endswith("DDPStrategy") and config["trainer"]["num_nodes"] == 4


MODELS = PAPER.parent / "models"


def test_model_overlays_compose_with_a_paper_config_and_build_from_local_folders(tmp_path, small_dataset, capsys):
    """configs/models/: Whisper, AST and another LLM (a Qwen2 folder) from local Hugging Face folders."""
    from transformers import (ASTConfig, ASTFeatureExtractor, ASTModel, Qwen2Config, Qwen2ForCausalLM,
                              WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration)

    from interleave.hf_encoders import ASTEncoder, WhisperAudioEncoder, build_encoder
    from tests.conftest import build_qwen2_tokenizer

    folders = {name: tmp_path / name for name in ("whisper", "ast", "qwen2")}
    whisper = WhisperAudioEncoder.presets["tiny"]
    WhisperForConditionalGeneration(WhisperConfig(**whisper)).save_pretrained(folders["whisper"])
    WhisperFeatureExtractor().save_pretrained(folders["whisper"])
    ASTModel(ASTConfig(**ASTEncoder.presets["tiny"])).save_pretrained(folders["ast"])
    ASTFeatureExtractor().save_pretrained(folders["ast"])
    tokenizer = build_qwen2_tokenizer()
    Qwen2ForCausalLM(Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, vocab_size=len(tokenizer), bos_token_id=None,
                                 eos_token_id=2, pad_token_id=0)).save_pretrained(folders["qwen2"])
    tokenizer.save_pretrained(folders["qwen2"])
    torch.save({f"module.{k}": v for k, v in build_encoder("tiny").state_dict().items()}, tmp_path / "cav-mae.pth")
    cpu = ["--model.llm_dtype=float32", "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto",
           "--trainer.precision=32-true", "--data.num_workers=0"]
    common = [*paths_args(small_dataset, llm=str(folders["qwen2"])), *cpu]
    cases = {
        "whisper.yaml": [f"--paths.whisper={folders['whisper']}"],
        "ast.yaml": [f"--paths.ast={folders['ast']}"],
        "llm.yaml": [f"--paths.encoder_checkpoint={tmp_path / 'cav-mae.pth'}", "--model.encoder=tiny"],
    }
    for name, extra in cases.items():
        write_shard(small_dataset)
        run = train.cli(["--config", str(PAPER / "ft_large.yaml"), "--config", str(MODELS / name), *common, *extra],
                        run=False)
        model = run.model
        assert model.llm.get_base_model().config.model_type == "qwen2" and model.audio_tokens == 32
        assert model.audio_encoder.kind == {"whisper.yaml": "whisper", "ast.yaml": "ast", "llm.yaml": "cavmae"}[name]
        assert model.audio_proj[1].in_features == model.audio_encoder.width == 32
        assert model.audio_proj[1].out_features == 64  # the LLM's hidden size
        if name == "llm.yaml":
            assert model.checkpoint_reports[0].matched["encoder"] > 0
        run.datamodule.setup("fit")  # connected to the model by the command line
    assert sorted(p.name for p in MODELS.glob("*.yaml")) == sorted(cases)
