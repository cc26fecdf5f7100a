"""configs/: every command the docs give resolves with only the flags it shows; the paper's four
rows (configs/paper/: a base, the fine-tuning recipe, one short overlay per row) parse, build,
and (the two LTU rows) evaluate; model and scale overlays add to a run's configs."""

import json
import shlex
from pathlib import Path

import pytest
import torch
import yaml

import train
from callbacks import ShardEvaluation
from interleave.model.generation import Sampling
from interleave.model.module import AudioLLM
from tests.helpers import ALL_TAGS, DOC_COMMANDS, PAPER, paths_args, tiny_overrides, write_shard

REPO = Path(__file__).resolve().parents[1]
BASE, FINETUNE = PAPER / "base.yaml", PAPER / "finetune.yaml"
# row -> (command, the SHARD layout it asks, its configs in the order they are given)
ROWS = {
    "ltu_noninterleaved": ("validate", "noninterleaved", [BASE, PAPER / "ltu_noninterleaved.yaml"]),
    "ltu_interleaved": ("validate", "interleaved", [BASE, PAPER / "ltu_interleaved.yaml"]),
    "ft_small": ("fit", "interleaved", [BASE, FINETUNE, PAPER / "ft_small.yaml"]),
    "ft_large": ("fit", "interleaved", [BASE, FINETUNE, PAPER / "ft_large.yaml"]),
}


def config_args(name: str) -> list[str]:
    return [arg for config in ROWS[name][2] for arg in ("--config", str(config))]


def _values(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _values(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _values(value)
    else:
        yield tree


@pytest.mark.slow
@pytest.mark.parametrize("command", DOC_COMMANDS)
def test_every_documented_command_resolves_with_only_its_flags(command, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    words = shlex.split(command)
    assert words[:2] == ["python", "train.py"]
    with pytest.raises(SystemExit) as done:
        train.cli([*words[2:], "--print_config"])
    assert done.value.code == 0, capsys.readouterr().err[-2000:]
    config = yaml.safe_load(capsys.readouterr().out)
    assert "???" not in [v for k, v in config.items() if k != "paths" for v in _values(v)]  # all that is read is set
    given = [words[i + 1] for i, word in enumerate(words) if word == "--config"]
    declared = {key for path in given for key in (yaml.safe_load((REPO / path).read_text()).get("paths") or {})}
    assert declared <= set(config["paths"]), "a config's paths: dropped another's"
    flags = dict(word[len("--paths.") :].split("=", 1) for word in words if word.startswith("--paths."))
    assert flags.items() <= config["paths"].items()
    last = yaml.safe_load((REPO / given[-1]).read_text())
    on_the_line = {word.split("=", 1)[0][len("--model.") :] for word in words if word.startswith("--model.")}
    for key, value in (last.get("model") or {}).items():  # the last overlay's model settings win
        if not str(value).startswith("${") and key not in on_the_line:  # unless the command sets them
            assert config["model"][key] == value, key


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def test_the_four_rows_are_there():
    assert sorted(p.name for p in PAPER.glob("*.yaml")) == sorted(
        {p.name for _, _, configs in ROWS.values() for p in configs}
    )
    assert all(len(configs[-1].read_text().splitlines()) <= 15 for _, _, configs in ROWS.values())  # short overlays


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ROWS))
def test_config_parses_with_the_papers_settings(name, tmp_path, capsys):
    command, layout, _ = ROWS[name]
    args = [command, *config_args(name), *paths_args(tmp_path, train_file=command == "fit"), "--print_config"]
    with pytest.raises(SystemExit) as done:
        train.cli(args)
    assert done.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    trainer, model, data = config["trainer"], config["model"], config["data"]["init_args"]
    assert config["data"]["class_path"] == "interleave.data.InterleavedDataModule"
    assert (trainer["accelerator"], trainer["devices"], trainer["strategy"], trainer["precision"]) == (
        "gpu",
        2,
        "ddp",
        "bf16-mixed",
    )
    assert trainer["logger"]["init_args"]["save_dir"] == "runs/paper" and trainer["logger"]["init_args"]["name"] == name
    assert (model["lora_r"], model["lora_alpha"], model["lora_dropout"]) == (8, 16, 0.05)
    assert model["llm"] == "/models/vicuna-7b" and model["ltu_checkpoint"] == "/models/ltu.bin"  # from --paths
    assert model["encoder"] == "cavmae"
    shard = next(c for c in trainer["callbacks"] if c["class_path"] == "callbacks.ShardEvaluation")["init_args"]
    assert shard["layout"] == layout and shard["repeats"] == 4 and shard["shard_file"] == f"{tmp_path}/shard.jsonl"
    assert shard["sampling"]["max_new_tokens"] == 400 and shard["batch_size"] == 8 and shard["text_control"] is True
    kinds = [c["class_path"].rsplit(".", 1)[1] for c in trainer["callbacks"]]
    if command == "fit":
        assert model["learning_rate"] == 2e-5 and data["batch_size"] == 4 and trainer["max_epochs"] == 3
        assert data["train_file"] == f"{tmp_path}/train.jsonl" and shard["every_n_epochs"] == 1
        assert data["train_on_prompt"] is True  # Appendix A: only the audio positions are out of the loss
        assert sorted(kinds) == sorted(
            ["RunSummary", "ShardEvaluation", "ModelCheckpoint", "LearningRateMonitor", "PaddingFraction"]
        )
    else:  # the LTU rows evaluate LTU's model as it is: nothing of the fine-tuning recipe
        assert data["train_file"] is None and data["train_on_prompt"] is False and trainer["max_epochs"] is None
        assert kinds == ["RunSummary", "ShardEvaluation"]


@pytest.mark.parametrize("name", sorted(ROWS))
def test_config_names_the_paths_left_to_set(name, capsys):
    command = ROWS[name][0]
    assert train.main([command, *config_args(name)]) == 2
    assert "paths." in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ROWS))
def test_config_builds_with_a_tiny_llama(name, small_dataset, tiny_ltu, tokenizer_dir, tiny_llama_config, monkeypatch):
    command, layout, _ = ROWS[name]
    write_shard(small_dataset)
    monkeypatch.chdir(small_dataset)  # runs/paper: the configs' own run folder
    run = train.cli(
        [
            *config_args(name),
            *paths_args(small_dataset, tiny_ltu, train_file=command == "fit"),
            *tiny_overrides(tokenizer_dir, tiny_llama_config),
        ],
        run=False,
    )  # run=False: no subcommand
    assert isinstance(run.model, AudioLLM) and run.model.hparams.lora_r == 8
    (report,) = run.model.checkpoint_reports
    assert report.missing == [] and report.unexpected == [] and report.matched["lora"] > 0
    (shard,) = [c for c in run.trainer.callbacks if isinstance(c, ShardEvaluation)]
    assert shard.settings.conditions[0] == layout and shard.settings.repeats == 4  # EvalSettings: main layout first
    if command == "fit":  # a collated fine-tuning batch: every text token is a target
        run.datamodule.setup("fit")  # connected to the model by the command line
        batch = run.datamodule.collator(padding_side="right")([run.datamodule.train_set[i] for i in range(4)])
        out = ~batch["audio_mask"] & batch["attention_mask"].bool()
        assert torch.equal(batch["labels"][out], batch["input_ids"][out])
        assert (batch["labels"][~out] == -100).all() and batch["audio_mask"].sum() == 4 * 32


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ltu_noninterleaved", "ltu_interleaved"])
def test_ltu_rows_evaluate_zero_shot(name, small_dataset, tiny_ltu, tokenizer_dir, tiny_llama_config, monkeypatch):
    write_shard(small_dataset)
    monkeypatch.chdir(small_dataset)  # runs/paper: the configs' own run folder
    args = [
        *config_args(name),
        *paths_args(small_dataset, tiny_ltu, train_file=False),
        *tiny_overrides(tokenizer_dir, tiny_llama_config),
        "--trainer.enable_progress_bar=false",
    ]
    run = train.cli(args, run=False)
    (shard,) = [c for c in run.trainer.callbacks if isinstance(c, ShardEvaluation)]
    shard.repeats, shard.sampling = 2, Sampling(max_new_tokens=3)  # the config's are the paper's 4 and 400
    run.trainer.validate(run.model, datamodule=run.datamodule)
    (version,) = (small_dataset / "runs" / "paper" / name).glob("version_*")
    metrics = json.loads((version / "predictions" / "epoch=00.metrics.json").read_text())
    assert metrics["layout"] == ROWS[name][1]
    assert {t for t in ALL_TAGS if not t.startswith("val/noninterleaved/")} <= set(metrics)


@pytest.mark.slow  # a fit, stopped by the data check
def test_the_demo_config_on_missing_data_names_the_command_that_writes_it(
    tmp_path, tokenizer_dir, tiny_llama_config, monkeypatch, capsys
):
    """configs/demo.yaml trains with the runtime's data module: `make demo` writes the data first
    (`interleave demo data/demo`); without it the run stops at once, saying so."""
    monkeypatch.chdir(tmp_path)
    tiny = [*tiny_overrides(tokenizer_dir, tiny_llama_config), "--model.val_max_new_tokens=4"]
    assert train.main(["fit", "--config", str(REPO / "configs" / "demo.yaml"), *tiny]) == 2
    err = capsys.readouterr().err
    assert "error: data/demo/train.jsonl does not exist: write it with `interleave demo data/demo`" in err, err[-2000:]
    assert "Traceback" not in err


SCALE = PAPER.parent / "scale"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["multinode_ddp.yaml", "fsdp_13b.yaml"])
def test_scale_configs_compose_with_a_paper_config(name, tmp_path, capsys):
    args = ["fit", *config_args("ft_large"), "--config", str(SCALE / name), *paths_args(tmp_path), "--print_config"]
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
        for dotted in (
            strategy["init_args"]["auto_wrap_policy"] + strategy["init_args"]["activation_checkpointing_policy"]
        ):
            module, _, cls = dotted.rpartition(".")
            assert issubclass(getattr(importlib.import_module(module), cls), nn.Module)
    else:
        assert strategy["class_path"].endswith("DDPStrategy") and config["trainer"]["num_nodes"] == 4


MODELS = PAPER.parent / "models"


@pytest.mark.slow
def test_model_overlays_compose_with_a_paper_config_and_build_from_local_folders(tmp_path, small_dataset, monkeypatch):
    """configs/models/: Whisper, AST and another LLM (a Qwen2 folder) from local Hugging Face folders."""
    monkeypatch.chdir(tmp_path)  # runs/paper: the configs' own run folder
    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTModel,
        Qwen2Config,
        Qwen2ForCausalLM,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    from interleave.encoders import build_encoder
    from interleave.encoders.ast import ASTEncoder
    from interleave.encoders.whisper import WhisperAudioEncoder
    from tests.helpers import build_qwen2_tokenizer

    folders = {name: tmp_path / name for name in ("whisper", "ast", "qwen2")}
    whisper = WhisperAudioEncoder.presets["tiny"]
    WhisperForConditionalGeneration(WhisperConfig(**whisper)).save_pretrained(folders["whisper"])
    WhisperFeatureExtractor().save_pretrained(folders["whisper"])
    ASTModel(ASTConfig(**ASTEncoder.presets["tiny"])).save_pretrained(folders["ast"])
    ASTFeatureExtractor().save_pretrained(folders["ast"])
    tokenizer = build_qwen2_tokenizer()
    Qwen2ForCausalLM(
        Qwen2Config(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=len(tokenizer),
            bos_token_id=None,
            eos_token_id=2,
            pad_token_id=0,
        )
    ).save_pretrained(folders["qwen2"])
    tokenizer.save_pretrained(folders["qwen2"])
    torch.save({f"module.{k}": v for k, v in build_encoder("tiny").state_dict().items()}, tmp_path / "cav-mae.pth")
    cpu = [
        "--model.llm_dtype=float32",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.strategy=auto",
        "--trainer.precision=32-true",
        "--data.num_workers=0",
    ]
    common = [*paths_args(small_dataset, llm=str(folders["qwen2"])), *cpu]
    cases = {
        "whisper.yaml": [f"--paths.whisper={folders['whisper']}"],
        "ast.yaml": [f"--paths.ast={folders['ast']}"],
        "llm.yaml": [f"--paths.encoder_checkpoint={tmp_path / 'cav-mae.pth'}", "--model.encoder=tiny"],
    }
    for name, extra in cases.items():
        write_shard(small_dataset)
        run = train.cli([*config_args("ft_large"), "--config", str(MODELS / name), *common, *extra], run=False)
        model = run.model
        assert model.llm.get_base_model().config.model_type == "qwen2" and model.audio_tokens == 32
        assert model.audio_encoder.kind == {"whisper.yaml": "whisper", "ast.yaml": "ast", "llm.yaml": "cavmae"}[name]
        assert model.audio_proj[1].in_features == model.audio_encoder.width == 32
        assert model.audio_proj[1].out_features == 64  # the LLM's hidden size
        if name == "llm.yaml":
            assert model.checkpoint_reports[0].matched["encoder"] > 0
        run.datamodule.setup("fit")  # connected to the model by the command line
    # a released Qwen2-Audio: the overlay and model.pretrained alone set every part
    from tests.helpers import save_tiny_qwen2_audio

    released = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    overlay = ["--config", str(MODELS / "qwen2_audio.yaml"), f"--paths.qwen2_audio={released}"]
    run = train.cli([*config_args("ft_large"), *overlay, *common], run=False)
    assert run.model.audio_encoder.kind == "qwen2_audio" and run.model.released.folder == released
    assert run.model.llm.get_base_model().config.model_type == "qwen2" and len(run.model.audio_proj) == 1
    run.datamodule.setup("fit")
    assert run.datamodule.hparams.max_length == 1024
    assert sorted(p.name for p in MODELS.glob("*.yaml")) == sorted([*cases, "qwen2_audio.yaml"])


@pytest.mark.slow
@pytest.mark.parametrize("name", [*ROWS, "demo"])
def test_the_qwen2_audio_overlay_builds_on_each_row_and_the_demo(name, tmp_path, small_dataset, monkeypatch):
    """configs/models/qwen2_audio.yaml after each paper row and after configs/demo.yaml: the model is
    built (model.pretrained checks its settings only then, --print_config does not) with the folder's
    parts, the base's LTU settings (model.llm, model.encoder, model.ltu_checkpoint) reset by the overlay."""
    from tests.helpers import save_tiny_qwen2_audio

    monkeypatch.chdir(tmp_path)
    released = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    write_shard(small_dataset)
    configs = ["--config", str(REPO / "configs" / "demo.yaml")] if name == "demo" else config_args(name)
    paths = [f"--paths.data={small_dataset}"] if name == "demo" else paths_args(small_dataset)
    cpu = ["--model.llm_dtype=float32", "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto"]
    overlay = ["--config", str(MODELS / "qwen2_audio.yaml"), f"--paths.qwen2_audio={released}"]
    run = train.cli([*configs, *overlay, *paths, *cpu, "--trainer.precision=32-true"], run=False)
    model = run.model
    assert model.released.folder == released and model.audio_encoder.kind == "qwen2_audio"
    assert len(model.audio_proj) == 1 and model.tokenizer.eos_token == "<|im_end|>"
    assert model.hparams["ltu_checkpoint"] is None and run.datamodule.hparams.max_length == 1024
