"""bench/bench_gpu.py at toy sizes on the CPU: every setting runs, the FLOPs formula counts the
model it runs, and the section names what it measured."""

from __future__ import annotations

import pytest
import torch

from bench import bench_gpu


def test_the_flops_formula_counts_the_frozen_decoder_weights_of_the_model(tokenizer_dir):
    from interleave.model.llm import load_tokenizer

    tok = load_tokenizer(str(tokenizer_dir))
    model = bench_gpu.build(str(tokenizer_dir), True, False, torch.device("cpu"), tok)
    base = model.llm.get_base_model()
    frozen = sum(
        m.weight.numel()
        for name, m in base.model.layers.named_modules()
        if isinstance(m, torch.nn.Linear) and "lora_" not in name
    )
    assert frozen and all(not p.requires_grad for n, p in base.model.layers.named_parameters() if "lora_" not in n)
    total, line = bench_gpu.flops_per_sample(model, text_tokens=10, answer_tokens=3)
    config = base.config
    t, d, layers = 10 + 32, config.hidden_size, config.num_hidden_layers
    encoder = sum(p.numel() for p in model.audio_encoder.parameters())
    assert total == 4 * frozen * t + 6 * layers * d * t * t + 4 * config.vocab_size * d * 3 + 2 * encoder * 512
    assert line.startswith("FLOPs/sample = 4*N_body*T + 6*L*d*T^2 + 4*V*d*A + 2*N_enc*P") and f"{total:.4e}" in line


def test_a_toy_run_measures_every_setting_and_says_it_is_a_toy(tokenizer_dir, capsys):
    body = bench_gpu.main(
        [
            "--toy",
            "--steps",
            "1",
            "--batch-sizes",
            "2",
            "--eval-queries",
            "3",
            "--cap",
            "4",
            "--tokenizer",
            str(tokenizer_dir),
            "--peak-tflops",
            "1",
            "--no-write",
        ]
    )
    assert "toy sizes" in body and "not the paper's size" in body
    rows = [line for line in body.splitlines() if line.startswith("| 2 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["no", "yes"]  # without and with gradient checkpointing
    for row in rows:
        seconds, tokens_per_s, mfu = (row.split("|")[i].strip() for i in (3, 4, 5))
        # seconds is printed to 3 decimals, so the throughput it implies is a range, not a point
        s = float(seconds)
        assert s > 0 and 2 * 140 / (s + 0.0005) - 1 <= float(tokens_per_s) <= 2 * 140 / max(s - 0.0005, 1e-9) + 1
        assert mfu.endswith("%")
    assert "queries/s" in body and "FLOPs/sample" in body
    assert "checkpointing=True batch=2" in capsys.readouterr().out


@pytest.mark.parametrize("model_name", ["qwen2-audio-7b", "af3-7b"])
def test_a_released_shape_runs_at_toy_size_with_the_towers_flops_and_10_s_spans(tokenizer_dir, model_name):
    from interleave.model.llm import load_tokenizer

    tok = load_tokenizer(str(tokenizer_dir))
    model = bench_gpu.build(str(tokenizer_dir), True, False, torch.device("cpu"), tok, model_name)
    assert model.audio_encoder.variable_length and bench_gpu.audio_positions(model) == 250  # 10 s, 25 per second
    total, line = bench_gpu.flops_per_sample(model, text_tokens=10, answer_tokens=3)
    config, tower = model.llm.get_base_model().config, model.audio_encoder.model.config
    n_enc = sum(p.numel() for p in model.audio_encoder.parameters())
    d, layers, t = config.hidden_size, config.num_hidden_layers, 10 + 250
    kv = config.num_key_value_heads * (d // config.num_attention_heads)
    n_body = layers * (2 * d * d + 2 * d * kv + 3 * d * config.intermediate_size)
    encoder = 2 * n_enc * 1500 + 4 * tower.num_hidden_layers * tower.hidden_size * 1500**2
    assert total == 4 * n_body * t + 6 * layers * d * t * t + 4 * config.vocab_size * d * 3 + encoder
    assert "2*N_enc*F + 4*L_enc*d_enc*F^2" in line
    batch = bench_gpu.training_batch(model, 2, 10, 3, torch.device("cpu"))
    assert batch["audio_mask"].sum(dim=1).tolist() == [250, 250]
    body = bench_gpu.main(
        ["--model", model_name, "--toy", "--steps", "1", "--batch-sizes", "2", "--eval-queries", "2", "--cap", "2"]
        + ["--tokenizer", str(tokenizer_dir), "--peak-tflops", "1", "--no-write"]
    )
    assert f"to check the script ({model_name})" in body and "128 text + 250 audio tokens" in body
    assert "answers/s" in body


def test_a_full_size_run_without_a_gpu_is_skipped_with_a_message(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_gpu.main(["--model", "af3-7b", "--no-write"]).endswith(
        "skipped, no CUDA GPU here (--toy runs the script at toy sizes)"
    )
    assert "skipped" in capsys.readouterr().out
