import contextlib
from types import SimpleNamespace

import pytest
import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.data.collate import Collator, span_starts
from interleave.data.module import InterleavedDataModule
from interleave.data.records import Record
from interleave.errors import InterleaveError
from interleave.model.generation import Sampling
from interleave.model.module import AudioLLM


@pytest.fixture()
def model(tiny_model_kwargs):
    torch.manual_seed(0)
    return AudioLLM(**tiny_model_kwargs)


def batch_for(model, instructions, padding_side="right", with_answer=True):
    col = Collator(model.tokenizer, padding_side=padding_side, with_answer=with_answer)
    items = [
        {
            "record": Record(id=str(i), audio="a.wav", instruction=ins, output="Labels: Siren"),
            "audio": torch.randn(1024, 128, generator=torch.Generator().manual_seed(i)),
        }
        for i, ins in enumerate(instructions)
    ]
    return col(items)


@pytest.mark.parametrize("instruction", ["Is [AUDIO] a type of vehicle?", "What sound is this?"])
def test_audio_positions_hold_projector_output_and_the_rest_token_embeddings(model, instruction):
    batch = batch_for(model, [instruction, "Name [AUDIO] please, with a longer prompt."])
    merged = model.merge_embeddings(batch["input_ids"], batch["audio_mask"], batch["audio"])
    tokens = model.llm.get_input_embeddings()(batch["input_ids"])
    audio = model.audio_embeddings(batch["audio"])
    mask = batch["audio_mask"]
    for row in range(2):
        assert torch.equal(merged[row][mask[row]], audio[row])
        assert torch.equal(merged[row][~mask[row]], tokens[row][~mask[row]])


def test_audio_embeddings_from_fbank_or_cached_features_agree(model):
    fbank = torch.randn(2, 1024, 128)
    features = model.audio_encoder(fbank)
    assert features.shape == (2, NUM_AUDIO_TOKENS, model.audio_encoder.embed_dim)
    assert torch.allclose(model.audio_embeddings(fbank), model.audio_embeddings(features=features))
    with pytest.raises(ValueError, match="exactly one"):
        model.audio_embeddings(fbank, features=features)
    with pytest.raises(ValueError, match=r"cached features must be \[clips, 32, "):
        model.audio_embeddings(features=features[:, :8])  # never taken for encoder inputs by its shape


def test_a_batch_of_cached_features_gives_the_batch_of_encoder_inputs_loss(model):
    batch = batch_for(model, ["Is [AUDIO] a type of vehicle?", "What sound is this?"])
    cached = {k: v for k, v in batch.items() if k != "audio"} | {"audio_features": model.audio_encoder(batch["audio"])}
    torch.testing.assert_close(model.loss(cached), model.loss(batch))
    torch.testing.assert_close(model(cached).logits, model(batch).logits)


def test_audio_mask_must_mark_32_positions(model):
    batch = batch_for(model, ["Is [AUDIO] loud?"])
    batch["audio_mask"][0, batch["audio_mask"][0].nonzero()[0]] = False
    with pytest.raises(ValueError, match="32 positions per clip"):
        model(batch)


def test_only_projector_and_lora_train(model):
    trainable = model.trainable_parameters()
    assert trainable and all(("lora_" in n) or n.startswith("audio_proj.") for n in trainable)
    assert not any(p.requires_grad for p in model.audio_encoder.parameters())
    assert {n for n in trainable if n.startswith("audio_proj.")} == {"audio_proj.1.weight", "audio_proj.1.bias"}
    assert any("q_proj.lora_A" in n for n in trainable) and any("v_proj.lora_B" in n for n in trainable)
    assert not any("k_proj.lora" in n for n in trainable)
    assert model.llm.training and not model.audio_encoder.training  # LoRA dropout active, encoder frozen


def test_loss_ignores_audio_and_prompt(model):
    """The loss is the cross-entropy of what follows the prompt (the answer and EOS) and of nothing else: not
    of the 32 audio positions, not of the prompt's tokens. Where the prompt ends is read off the prompt
    encoded alone (as generation encodes it), not off the labels, so a labelled audio position fails it."""
    batch = batch_for(model, ["Is [AUDIO] loud?"])
    prompt = batch_for(model, ["Is [AUDIO] loud?"], with_answer=False)["input_ids"][0]
    n = len(prompt)
    ids, audio = batch["input_ids"][0], batch["audio_mask"][0]
    assert torch.equal(ids[:n], prompt) and len(ids) > n + 1  # the answer follows the prompt
    assert int(audio[:n].sum()) == NUM_AUDIO_TOKENS and not audio[n:].any()  # the audio span is in the prompt
    out = model(batch)
    expected = torch.nn.functional.cross_entropy(out.logits[0, n - 1 : -1], ids[n:])
    torch.testing.assert_close(out.loss, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(model.loss(batch), expected, atol=1e-6, rtol=1e-5)


def test_loss_on_label_positions_only_equals_the_full_loss(model):
    batch = batch_for(model, ["Is [AUDIO] loud?", "What sound is this? Answer at length, please."])
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()  # row 0 is padded
    torch.testing.assert_close(model.loss(batch), model(batch).loss, atol=1e-6, rtol=1e-5)


def test_generation_batched_left_padded_equals_one_at_a_time(model):
    prompts = ["Is [AUDIO] a type of vehicle?", "What sound is this? Tell me in a long sentence please."]
    batch = batch_for(model, prompts, padding_side="left", with_answer=False)
    together = model.generate(
        batch["input_ids"],
        batch["attention_mask"],
        batch["audio_mask"],
        batch["audio"],
        max_new_tokens=6,
        do_sample=False,
    )
    alone = []
    for i, p in enumerate(prompts):
        b = batch_for(model, [p], padding_side="left", with_answer=False)
        b["audio"] = batch["audio"][i : i + 1]
        alone += model.generate(
            b["input_ids"], b["attention_mask"], b["audio_mask"], b["audio"], max_new_tokens=6, do_sample=False
        )
    assert together == alone


def test_frozen_init_is_reproducible(tiny_model_kwargs):
    a, b = AudioLLM(**tiny_model_kwargs), AudioLLM(**tiny_model_kwargs)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        if not pa.requires_grad:
            assert torch.equal(pa, pb), name


def test_llm_from_a_local_hugging_face_folder(tmp_path, tiny_model_kwargs, tokenizer):
    from interleave.model.llm import load_llm

    folder = tmp_path / "hf-llm"
    load_llm(config=tiny_model_kwargs["llm_config"], seed=7).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    kwargs = {**tiny_model_kwargs, "llm": str(folder), "llm_config": None, "tokenizer": None}
    from_folder = AudioLLM(**kwargs)
    from_config = AudioLLM(**{**tiny_model_kwargs, "frozen_init_seed": 7})
    ids = torch.tensor([[1, 5, 9, 22]])
    with torch.no_grad():
        torch.testing.assert_close(from_folder.llm(input_ids=ids).logits, from_config.llm(input_ids=ids).logits)
    assert len(from_folder.tokenizer) == len(tokenizer)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_model_kwargs):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = AudioLLM(**{**tiny_model_kwargs, "gradient_checkpointing": checkpointing, "lora_dropout": 0.0})
        batch = batch_for(model, ["Is [AUDIO] loud?", "What sound is this?"])
        model.loss(batch).backward()
        grads.append({n: p.grad.clone() for n, p in model.trainable_parameters().items() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5)
    assert model.llm.get_base_model().is_gradient_checkpointing


def test_train_encoder_trains_and_checkpoints_the_encoder(tiny_model_kwargs, model):
    torch.manual_seed(0)
    trained = AudioLLM(**{**tiny_model_kwargs, "train_encoder": True, "lora_dropout": 0.0})
    trainable = trained.trainable_parameters()
    encoder_names = {f"audio_encoder.{n}" for n, p in trained.audio_encoder.named_parameters() if n != "pos_embed_a"}
    assert encoder_names and encoder_names <= set(trainable)  # all but the fixed sin-cos positions
    assert set(trainable) - encoder_names == set(model.trainable_parameters())  # plus projector and LoRA
    assert trained.audio_encoder.training and not trained.audio_encoder.frozen  # train mode while training
    trained.eval()
    assert not trained.audio_encoder.training
    trained.train()

    before = {n: p.detach().clone() for n, p in trainable.items()}
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    trained.loss(batch_for(trained, ["Is [AUDIO] loud?", "What sound is this?"])).backward()
    assert trained.audio_encoder.patch_embed_a.proj.weight.grad is not None
    optimizer.step()
    changed = {n for n in encoder_names if not torch.equal(trainable[n], before[n])}
    for name in (
        "patch_embed_a.proj.weight",
        "modality_a",
        "blocks_a.0.attn.qkv.weight",
        "blocks_u.0.mlp.fc2.weight",
        "norm_a.weight",
    ):
        assert f"audio_encoder.{name}" in changed, name

    checkpoint = {"state_dict": trained.state_dict()}
    trained.on_save_checkpoint(checkpoint)
    assert set(checkpoint["state_dict"]) == set(trainable) and encoder_names <= set(checkpoint["state_dict"])
    trained.on_load_checkpoint(checkpoint)  # complete: no complaint
    frozen_checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(frozen_checkpoint)
    assert not any(k.startswith("audio_encoder.") for k in frozen_checkpoint["state_dict"])
    with pytest.raises(InterleaveError, match="lacks .* trainable weight"):
        trained.on_load_checkpoint(frozen_checkpoint)  # a frozen-encoder run's checkpoint has no encoder


def test_shard_features_are_recomputed_at_each_point_when_the_encoder_trains(
    tmp_path, small_dataset, tiny_model_kwargs, monkeypatch
):
    from callbacks import ShardEvaluation
    from interleave.eval import evaluate as evaluation
    from tests.helpers import write_shard

    computed = []

    def spy(encoder, paths, batch_size=8, channel="first", variant=None):
        computed.append((len(paths), channel))
        return compute_features(encoder, paths, batch_size, channel, variant)

    compute_features = evaluation.compute_features
    monkeypatch.setattr(evaluation, "compute_features", spy)
    shard = write_shard(small_dataset)  # 15 queries over 3 clips
    for train_encoder, clips_per_point in ((False, [3, 0]), (True, [3, 3])):
        module = AudioLLM(**{**tiny_model_kwargs, "train_encoder": train_encoder})
        callback = ShardEvaluation(
            str(shard), text_control=False, repeats=1, sampling=Sampling(max_new_tokens=1), batch_size=8
        )
        data = InterleavedDataModule(audio_channel="mean")  # no record files: the evaluation reads only its collation
        data.connect(module.data_spec())
        trainer = SimpleNamespace(
            datamodule=data,
            precision_plugin=SimpleNamespace(val_step_context=contextlib.nullcontext),
            global_rank=0,
            world_size=1,
            global_step=0,
            state=SimpleNamespace(fn="validate"),
            progress_bar_callback=None,
            is_global_zero=True,
        )
        callback.setup(trainer, module, "validate")
        per_point = []
        for epoch in (0, 1):
            computed.clear()
            callback.evaluate(trainer, module, epoch)
            assert {channel for _, channel in computed} == {"mean"}  # the data module's audio_channel
            per_point.append(sum(n for n, _ in computed))
        # A frozen encoder's features are kept across points; a trained one's are computed again at each.
        assert per_point == clips_per_point, train_encoder


@pytest.mark.slow
def test_fit_with_train_encoder_trains_saves_and_exports_the_encoder(
    tmp_path, small_dataset, tiny_model_kwargs, monkeypatch
):
    import lightning as L
    from safetensors.torch import load_file

    import train
    from interleave.tools.export import export
    from tests.helpers import write_config

    class Probe(L.Callback):
        def __init__(self):
            self.modes = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.modes.append(pl_module.audio_encoder.training)

    monkeypatch.setattr("sys.argv", ["train.py"])
    config = write_config(tmp_path, small_dataset, {**tiny_model_kwargs, "train_encoder": True}, max_steps=2)
    run = train.cli(["--config", str(config)], run=False)
    encoder = run.model.audio_encoder
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    probe = Probe()
    run.trainer.callbacks.append(probe)
    run.trainer.fit(run.model, datamodule=run.datamodule)
    assert probe.modes == [True, True]  # in train mode for every training batch
    optimized = {id(p) for group in run.trainer.optimizers[0].param_groups for p in group["params"]}
    assert all(id(p) in optimized for p in encoder.parameters() if p.requires_grad)
    assert not torch.equal(encoder.patch_embed_a.proj.weight, before["patch_embed_a.proj.weight"])

    path = tmp_path / "ckpt" / "last.ckpt"
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert set(state) == set(run.model.trainable_parameters()) and "audio_encoder.patch_embed_a.proj.weight" in state
    reloaded = AudioLLM.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    assert reloaded.hparams.train_encoder
    assert torch.equal(reloaded.audio_encoder.patch_embed_a.proj.weight, encoder.patch_embed_a.proj.weight)
    exported = load_file(export(path, tmp_path / "exported") / "encoder.safetensors")
    assert torch.equal(exported["patch_embed_a.proj.weight"], encoder.patch_embed_a.proj.weight)


@pytest.mark.slow
@pytest.mark.parametrize("audio_tokens", [8, 64])
def test_audio_tokens_reach_the_encoder_the_collator_and_the_checker_from_the_model(
    tmp_path, small_dataset, tiny_model_kwargs, monkeypatch, audio_tokens
):
    import lightning as L

    import train
    from tests.helpers import write_config

    class Probe(L.Callback):
        def __init__(self):
            self.counts = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.counts += batch["audio_mask"].sum(dim=1).tolist()

    monkeypatch.setattr("sys.argv", ["train.py"])
    config = write_config(tmp_path, small_dataset, {**tiny_model_kwargs, "audio_tokens": audio_tokens}, max_steps=2)
    run = train.cli(["--config", str(config)], run=False)
    assert run.model.audio_encoder(torch.randn(1, 1024, 128)).shape == (1, audio_tokens, 32)
    probe = Probe()
    run.trainer.callbacks.append(probe)
    run.trainer.fit(run.model, datamodule=run.datamodule)
    assert probe.counts == [audio_tokens] * 4
    assert run.datamodule.collator().audio_tokens == audio_tokens  # the checker's collator too


def test_a_prompt_too_long_for_the_models_audio_tokens_is_rejected_at_set_up(
    tmp_path, small_dataset, tiny_model_kwargs
):
    from interleave.data.module import InterleavedDataModule

    model = AudioLLM(**{**tiny_model_kwargs, "audio_tokens": 100})
    data = InterleavedDataModule(train_file=str(small_dataset / "train.jsonl"), max_length=110, on_bad_record="error")
    data.trainer = SimpleNamespace(lightning_module=model, log_dir=str(tmp_path), world_size=1, local_rank=0)
    with pytest.raises(
        InterleaveError, match=r"not connected to a model: call datamodule.connect\(model.data_spec\(\)\)"
    ):
        data.setup("fit")  # nothing is taken from the trainer's model behind the caller's back
    data.connect(model.data_spec())
    assert data.spec.audio_tokens == 100 and data.spec.audio_loader == model.audio_encoder.load_inputs
    assert data.spec.heard_seconds == model.audio_encoder.heard_seconds == pytest.approx(10.255)  # 1024 fbank frames
    with pytest.raises(InterleaveError, match="100 audio"):
        data.setup("fit")


# ---- several clips in one prompt (issue 19) ---------------------------------------------------


def clip_batch(model, rows, padding_side="right", with_answer=True):
    """rows: (instruction, clip seeds); each seed is one clip's fbank. One seed gives a plain `audio`."""
    col = Collator(model.tokenizer, padding_side=padding_side, with_answer=with_answer)
    fbank = {}

    def clip(seed):
        return fbank.setdefault(seed, torch.randn(1024, 128, generator=torch.Generator().manual_seed(seed)))

    items = [
        {
            "record": Record(
                id=str(i),
                audio=tuple(f"{s}.wav" for s in seeds) if len(seeds) > 1 else f"{seeds[0]}.wav",
                instruction=ins,
                output="Yes",
            ),
            "audio": [clip(s) for s in seeds] if len(seeds) > 1 else clip(seeds[0]),
        }
        for i, (ins, seeds) in enumerate(rows)
    ]
    return col(items)


@pytest.mark.parametrize("seeds", [(1, 2), (2, 1), (1, 2, 3), (3, 2, 1)])
def test_each_span_holds_its_own_clips_projected_features(model, seeds):
    instruction = (
        "Is [AUDIO] the same kind of sound as [AUDIO]?" if len(seeds) == 2 else "Do [AUDIO], [AUDIO] and [AUDIO] match?"
    )
    batch = clip_batch(model, [(instruction, seeds)])
    merged = model.merge_embeddings(batch["input_ids"], batch["audio_mask"], batch["audio"])
    for k, (row, start) in enumerate(span_starts(batch["audio_mask"], NUM_AUDIO_TOKENS)):
        alone = model.audio_embeddings(torch.randn(1, 1024, 128, generator=torch.Generator().manual_seed(seeds[k])))[0]
        assert torch.equal(merged[row, start : start + NUM_AUDIO_TOKENS], alone)
    tokens = model.llm.get_input_embeddings()(batch["input_ids"])
    mask = batch["audio_mask"]
    assert torch.equal(merged[~mask], tokens[~mask])


def test_a_row_with_two_clips_beside_a_row_with_one(model):
    rows = [
        ("Is [AUDIO] the same kind of sound as [AUDIO]?", (1, 2)),
        ("What is [AUDIO]?", (3,)),
        ("What is it?", (4,)),
    ]
    batch = clip_batch(model, rows)
    spans = span_starts(batch["audio_mask"], NUM_AUDIO_TOKENS)
    assert [row for row, _ in spans] == [0, 0, 1, 2]
    merged = model.merge_embeddings(batch["input_ids"], batch["audio_mask"], batch["audio"])
    for k, (row, start) in enumerate(spans):
        alone = model.audio_embeddings(torch.randn(1, 1024, 128, generator=torch.Generator().manual_seed(k + 1)))[0]
        assert torch.equal(merged[row, start : start + NUM_AUDIO_TOKENS], alone)  # clip k is seed k + 1
    assert spans[3][1] == 0  # LTU's layout: the span first
    torch.testing.assert_close(model.loss(batch), model(batch).loss, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match=r"3 clip\(s\) given.*\[64, 32, 32\]"):
        model.merge_embeddings(batch["input_ids"], batch["audio_mask"], batch["audio"][:3])


def test_greedy_generation_with_two_clips_equals_one_at_a_time(model):
    rows = [
        ("Is [AUDIO] the same kind of sound as [AUDIO]?", (1, 2)),
        ("What is [AUDIO]? Say it in a long sentence.", (3,)),
        ("Do [AUDIO] and [AUDIO] belong to the same class?", (4, 1)),
    ]
    batch = clip_batch(model, rows, padding_side="left", with_answer=False)
    together = model.generate(
        batch["input_ids"],
        batch["attention_mask"],
        batch["audio_mask"],
        batch["audio"],
        max_new_tokens=6,
        do_sample=False,
    )
    alone = []
    for row in rows:
        b = clip_batch(model, [row], padding_side="left", with_answer=False)
        alone += model.generate(
            b["input_ids"], b["attention_mask"], b["audio_mask"], b["audio"], max_new_tokens=6, do_sample=False
        )
    assert together == alone
    swapped = clip_batch(model, [(rows[0][0], (2, 1))], padding_side="left", with_answer=False)
    first = clip_batch(model, [rows[0]], padding_side="left", with_answer=False)
    assert not torch.equal(
        model.merge_embeddings(first["input_ids"], first["audio_mask"], first["audio"]),
        model.merge_embeddings(swapped["input_ids"], swapped["audio_mask"], swapped["audio"]),
    )
