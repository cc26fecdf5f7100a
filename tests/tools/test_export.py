"""interleave.tools.export: a checkpoint as a peft adapter and the projector, and the refusals it shares with train.py."""

import json

import pytest
import torch
from peft import PeftModel

import train
from interleave.model.llm import load_llm
from interleave.tools.command import main as command_main
from interleave.tools.export import main as export_main
from tests.helpers import RunsCode, write_config


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


@pytest.mark.slow
def test_export_writes_a_peft_adapter_that_reproduces_the_logits(
    tmp_path, small_dataset, tiny_model_kwargs, tiny_llama_config
):
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


@pytest.mark.parametrize("fault", ["truncated", "runs-code"])
def test_export_refuses_a_checkpoint_with_the_words_of_train_py_validate(
    fault, tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    intact, ckpt, marker = folder / "epoch=0-step=2.ckpt", folder / "last.ckpt", tmp_path / "pwned"
    torch.save({"state_dict": {"w": torch.zeros(4096)}}, intact)
    if fault == "truncated":
        ckpt.write_bytes(intact.read_bytes()[: intact.stat().st_size // 2])  # what a kill mid-write leaves
    else:
        torch.save({"state_dict": {}, "payload": RunsCode(str(marker))}, ckpt)
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    assert train.main(["validate", "--config", str(config), f"--ckpt_path={ckpt}"]) == 2
    from_train = capsys.readouterr().err
    assert command_main(["export", str(ckpt), str(tmp_path / "export")]) == 2  # `interleave export CKPT OUT_DIR`
    from_export = capsys.readouterr().err
    assert from_export == from_train
    assert (
        from_export.startswith(f"error: {ckpt}: ") and from_export.count("\n") == 1 and "Traceback" not in from_export
    )
    if fault == "truncated":
        assert "not a complete checkpoint" in from_export and str(intact) in from_export
    else:
        assert "refused to load" in from_export
    assert not marker.exists() and not (tmp_path / "export").exists()


@pytest.mark.slow
def test_the_exported_adapter_and_projector_give_a_two_clip_prompts_logits(
    tmp_path, small_dataset, tiny_model_kwargs, tiny_llama_config
):
    """Issue 19: outside Lightning, each clip projected with the exported projector and put in its
    span (`interleave.data.collate.span_starts` of the batch's audio_mask) gives the trained model's logits."""
    from safetensors.torch import load_file

    from interleave.data.audio_records import AudioRecords
    from interleave.data.collate import Collator, span_starts
    from interleave.data.records import Record

    run = train.cli(["fit", "--config", str(write_config(tmp_path, small_dataset, tiny_model_kwargs))])
    assert export_main([str(tmp_path / "ckpt" / "last.ckpt"), str(tmp_path / "export")]) == 0
    model = run.model.eval()
    record = Record(id="p", audio=("audio/c0.wav", "audio/c1.wav"), instruction="Is [AUDIO] like [AUDIO]?", output="No")
    batch = Collator(model.tokenizer)([AudioRecords([record], small_dataset)[0]])
    peft_model = PeftModel.from_pretrained(
        load_llm(config=tiny_llama_config, seed=0), tmp_path / "export" / "lora"
    ).eval()
    weights = load_file(tmp_path / "export" / "projector.safetensors")
    with torch.no_grad():
        features = model.audio_encoder(batch["audio"])
        normed = torch.nn.functional.layer_norm(features, features.shape[-1:])
        projected = normed @ weights["audio_proj.1.weight"].T + weights["audio_proj.1.bias"]
        embeds = peft_model.get_input_embeddings()(batch["input_ids"]).clone()
        for clip, (row, start) in enumerate(span_starts(batch["audio_mask"], projected.shape[1])):
            embeds[row, start : start + projected.shape[1]] = projected[clip]
        exported = peft_model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
        trained = model(batch).logits
    assert len(batch["audio"]) == 2
    assert torch.allclose(exported, trained, atol=1e-4)


def test_export_of_a_text_file_or_a_directory_is_one_line_naming_it(tmp_path, capsys):
    """Issue 28: `interleave export /etc/passwd OUT` printed torch's IndexError traceback."""
    passwd, config = tmp_path / "passwd", tmp_path / "demo.yaml"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    config.write_text("model:\n  lora_r: 8\n")
    for source, words in (
        (passwd, "not a checkpoint: text"),
        (config, "not a checkpoint: text"),
        (tmp_path, "a directory, not a checkpoint file"),
    ):
        assert command_main(["export", str(source), str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {source}: {words}") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_export_help_says_what_it_writes_without_a_dangling_colon(capsys):
    """Issue 34: `interleave export --help` ended its description with a dangling ":"."""
    with pytest.raises(SystemExit) as exit_:
        command_main(["export", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: interleave export [-h] CKPT OUT_DIR\n")
    description = " ".join(out.split("\n\n")[1].split())
    assert description.startswith("Export a training checkpoint for use outside Lightning: ") and description.endswith(
        "."
    )
    for written in (
        "OUT_DIR/lora",
        "OUT_DIR/projector.safetensors",
        "OUT_DIR/model.json",
        "OUT_DIR/encoder.safetensors",
    ):
        assert written in description
    for line in out.splitlines():  # only the section headings end in ":"
        assert not line.endswith(":") or line in ("positional arguments:", "options:"), line
    assert "CKPT        a checkpoint" in out and "OUT_DIR     the folder" in out


def test_a_released_models_export_loads_onto_the_released_class_with_its_logits(tmp_path):
    """model.pretrained: OUT_DIR/released is one peft adapter of Qwen2AudioForConditionalGeneration
    (LoRA on its language model, the trained projector); loaded there it gives the trained model's logits."""
    from transformers import Qwen2AudioForConditionalGeneration

    from interleave.model.module import AudioLLM
    from interleave.tools.export import write_released_adapter
    from tests.helpers import clip, processor_inputs, save_tiny_qwen2_audio

    folder = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    model = AudioLLM(pretrained=str(folder), lora_r=4, lora_alpha=8).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # a trained state: LoRA updates that are not zero, a projector moved
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))
    out = write_released_adapter(model, tmp_path / "out" / "released")
    base = Qwen2AudioForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
    released = PeftModel.from_pretrained(base, out).eval()
    inputs = processor_inputs(folder, [(["Is ", clip(1.5, seed=1), " like ", clip(3.0, seed=2), "?"], "No.")])
    audio_id = model.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    waves = [clip(1.5, seed=1), clip(3.0, seed=2)]
    audio = torch.stack([model.audio_encoder.inputs_from_waveform(torch.from_numpy(w)) for w in waves])
    mask = inputs["input_ids"] == audio_id
    with torch.no_grad():
        embeds = model.merge_embeddings(inputs["input_ids"], mask, audio)
        ours = model.llm(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).logits
        theirs = released(**inputs).logits
    assert (ours - theirs).abs().max() <= 1e-5
    with released.disable_adapter(), torch.no_grad():
        assert (released(**inputs).logits - theirs).abs().max() > 1e-3  # the adapter changes the model


def test_a_released_audio_flamingo_3s_export_loads_onto_its_class_with_its_logits(tmp_path):
    """The same for Audio Flamingo 3: its two-layer projector (linear_1, linear_2) and the LoRA as
    one peft adapter of AudioFlamingo3ForConditionalGeneration, with the trained model's logits."""
    from transformers import AudioFlamingo3ForConditionalGeneration

    from interleave.model.module import AudioLLM
    from interleave.tools.export import write_released_adapter
    from tests.helpers import af3_processor_inputs, clip, save_tiny_audioflamingo3

    folder = save_tiny_audioflamingo3(tmp_path / "af3")
    model = AudioLLM(pretrained=str(folder), lora_r=4, lora_alpha=8).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))
    out = write_released_adapter(model, tmp_path / "out" / "released")
    base = AudioFlamingo3ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
    released = PeftModel.from_pretrained(base, out).eval()
    wave = clip(34.0, seed=1)
    inputs = af3_processor_inputs(folder, [(wave, "What is it?", "A siren.")])
    mask = inputs["input_ids"] == model.tokenizer.convert_tokens_to_ids("<sound>")
    audio = model.audio_encoder.inputs_from_waveform(torch.from_numpy(wave))[None]
    with torch.no_grad():
        embeds = model.merge_embeddings(inputs["input_ids"], mask, audio)
        ours = model.llm(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).logits
        theirs = released(**inputs).logits
    assert (ours - theirs).abs().max() <= 1e-5
    with released.disable_adapter(), torch.no_grad():
        assert (released(**inputs).logits - theirs).abs().max() > 1e-3
