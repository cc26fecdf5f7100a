"""The audio LLM as a LightningModule: frozen encoder -> projector -> LoRA-wrapped LLM.

`train_encoder=True` trains the encoder too (LTU's last stage, `trainable_params='all'`).

The collator has already expanded each `[AUDIO]` into `audio_tokens` positions (the model's
setting, which the data module hands the collator) marked in `audio_mask`, one span per clip
(several where a prompt holds several clips); this module only embeds the tokens, puts the
projected audio embeddings at those positions with `masked_scatter`, and runs the LLM (loss for
training; text through `interleave.model.generation`, which holds both generation paths).
Checkpoints keep only what training changes: the projector and the LoRA weights (and the encoder's
when it trains).
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from peft import LoraConfig, get_peft_model
from torch import nn

from interleave import NUM_AUDIO_TOKENS
from interleave.data.collate import IGNORE_INDEX, span_runs
from interleave.encoders import build_encoder
from interleave.errors import InterleaveError
from interleave.labels import labels_match
from interleave.model import generation
from interleave.model.llm import align_special_tokens, load_llm, load_tokenizer, lora_targets
from interleave.model.ltu import load_encoder_checkpoint, load_ltu_checkpoint
from interleave.model.pretrained import (
    RELEASED_KEY,
    Released,
    load_released_projector,
    open_released,
    released_mismatch,
)
from interleave.model.projector import ProjectorKind, build_projector, projector_dtype
from interleave.spec import Batch, DataSpec


class AudioLLM(L.LightningModule):
    """LTU-style audio LLM with interleaved prompts.

    LLM: `llm` is a local HF folder of any causal LM, a .gguf file or `builtin:NAME`; or `llm_config`
    (a config dict, `model_type` picking the architecture) gives random weights, with `tokenizer`
    naming where the tokenizer comes from. LoRA targets `lora_target_modules`, by default the
    architecture's attention projections (`interleave.model.llm.lora_targets`).
    Encoder: `encoder` is `KIND[:SIZE]` (`cavmae`, `ast`, `whisper`; see `interleave.encoders`),
    from `encoder_path` (a local HF folder, ast/whisper) or random weights of the size with
    `encoder_kwargs` overrides; its output width sizes the projector. `audio_tokens` is the number
    of audio positions per clip (LTU's 32), pooled from the encoder's frames.
    It is frozen unless `train_encoder` (as LTU's last stage): then it is in train mode while
    training, its parameters go to the optimizer and into the checkpoints, and the feature cache
    (`data.feature_cache`) is refused, since its features change at every step.
    Random frozen weights (encoder, `llm_config` LLM) are drawn from `frozen_init_seed`.
    A NaN/infinite training loss stops the run naming the step and records (`on_nonfinite_loss=error`)
    or skips that batch and counts it as `train/skipped_nonfinite` (`skip`; single-process only).
    Released weights: `encoder_checkpoint` (CAV-MAE's audio branch alone) and/or `ltu_checkpoint`
    (LTU's state dict: encoder, projector and LoRA; see `interleave.model.ltu`), loaded in that order.
    Projector: `projector` is a kind of `interleave.model.projector` (`ltu`: LayerNorm + Linear;
    `linear`).
    A released audio LLM: `pretrained` is its local Hugging Face folder (Qwen2-Audio, Audio Flamingo 3; see
    `interleave.model.pretrained`). It sets the encoder (its tower, whose span follows the clip's
    length), the projector (its kind, the released weights), the LLM (read in place; LoRA goes on
    it alone), the tokenizer and the chat layout; `llm`, `llm_config`, `tokenizer`, `encoder`,
    `encoder_kwargs`, `encoder_path`, `audio_tokens`, `projector`, `encoder_checkpoint` and
    `ltu_checkpoint` left at their defaults, else refused by name.

    Args:
        llm: the LLM: a local Hugging Face folder of a causal LM, a .gguf file or `builtin:NAME`.
        llm_config: a config dict (`model_type` picks the architecture) for an LLM of random
            weights, instead of `llm`.
        tokenizer: where the tokenizer comes from (a folder or .gguf); default the LLM's own.
        llm_dtype: the frozen LLM's dtype (and, with `pretrained`, the frozen tower's).
        encoder: the audio encoder, `KIND[:SIZE]` (`cavmae`, `ast`, `whisper`, `qwen2_audio`, `audioflamingo3`).
        encoder_kwargs: overrides of the encoder size's fields (random weights).
        encoder_path: a local Hugging Face folder of an AST or Whisper encoder.
        audio_tokens: audio positions per clip (LTU's 32), pooled from the encoder's frames.
        lora_r: LoRA's rank.
        lora_alpha: LoRA's scaling numerator (the update is scaled by alpha / r).
        lora_dropout: dropout on LoRA's input.
        lora_target_modules: the modules LoRA wraps; default the architecture's attention projections.
        learning_rate: AdamW's peak learning rate.
        weight_decay: AdamW's weight decay.
        warmup_steps: linear warm-up steps to the peak rate.
        lr_schedule: after warm-up, `linear` decay to 0 at the last step or a `constant` rate.
        gradient_checkpointing: recompute the LLM's activations in the backward pass (less memory).
        frozen_init_seed: the seed of random frozen weights (encoder, `llm_config`'s LLM).
        encoder_checkpoint: CAV-MAE's released audio branch, loaded into the encoder.
        ltu_checkpoint: LTU's released state dict (encoder, projector and LoRA).
        val_generate: at validation, also generate answers and log `val/label_accuracy`.
        val_max_new_tokens: the cap on those answers' tokens (and on `predict`'s).
        on_nonfinite_loss: a NaN/infinite training loss stops the run (`error`) or skips the batch
            (`skip`, single-process only).
        train_encoder: train the encoder too (LTU's last stage); the feature cache is then refused.
        projector: the projector's kind (`ltu`: LayerNorm + Linear; `linear`: one Linear; `mlp`:
            Linear -> GELU -> Linear).
        pretrained: a released audio LLM's local Hugging Face folder (Qwen2-Audio, Audio Flamingo 3): its encoder,
            projector, LLM, tokenizer and chat layout.
    """

    def __init__(
        self,
        llm: str | None = "builtin:smollm2-135m-instruct",
        llm_config: dict | None = None,
        tokenizer: str | None = None,
        llm_dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        encoder: str = "cavmae",
        encoder_kwargs: dict | None = None,
        encoder_path: str | None = None,
        audio_tokens: int = NUM_AUDIO_TOKENS,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        lora_target_modules: list[str] | None = None,
        learning_rate: float = 2e-5,
        weight_decay: float = 0.0,
        warmup_steps: int = 100,
        lr_schedule: Literal["linear", "constant"] = "linear",
        gradient_checkpointing: bool = False,
        frozen_init_seed: int = 0,
        encoder_checkpoint: str | None = None,
        ltu_checkpoint: str | None = None,
        val_generate: bool = True,
        val_max_new_tokens: int = 24,
        on_nonfinite_loss: Literal["error", "skip"] = "error",
        train_encoder: bool = False,
        projector: ProjectorKind = "ltu",
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.strict_loading = False  # checkpoints hold only the trainable weights

        self.released: Released | None = None
        if pretrained:
            given = dict(
                llm=llm,
                llm_config=llm_config,
                tokenizer=tokenizer,
                encoder=encoder,
                encoder_kwargs=encoder_kwargs,
                encoder_path=encoder_path,
                audio_tokens=audio_tokens,
                projector=projector,
                encoder_checkpoint=encoder_checkpoint,
                ltu_checkpoint=ltu_checkpoint,
            )
            self.released, parts = open_released(pretrained, given, llm_dtype, train_encoder)
            self.tokenizer, self.audio_encoder, base = parts.tokenizer, parts.encoder, parts.llm
            projector = self.released.family.projector
            if self.released.family.layout_warning:
                rank_zero_warn(f"[interleave] {self.released.family.layout_warning}")
        else:
            self.tokenizer = load_tokenizer(tokenizer or llm) if (tokenizer or llm) else None
            if self.tokenizer is None:
                raise InterleaveError("set model.tokenizer when the LLM comes from model.llm_config")
            # Frozen weights are never in checkpoints, so random ones must come from a fixed seed.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(frozen_init_seed)
                self.audio_encoder = build_encoder(
                    encoder, encoder_path, encoder_kwargs, audio_tokens, not train_encoder
                )
            base = load_llm(llm if llm_config is None else None, llm_config, llm_dtype, seed=frozen_init_seed)
            align_special_tokens(self.tokenizer, base.config, llm or "model.llm_config")
        self.audio_tokens = audio_tokens
        if gradient_checkpointing:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        lora = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=lora_targets(base.config, lora_target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        self.llm = get_peft_model(base, lora)
        # LTU's projector (LayerNorm without affine, then Linear: LTU's audio_proj.1) or another kind.
        self.audio_proj = build_projector(projector, self.audio_encoder.width, base.config.hidden_size)
        if self.released is not None:
            load_released_projector(self.released, self.audio_proj)
        # from_pretrained returns the LLM in eval mode and Lightning keeps each module's mode, so
        # without this LoRA dropout would never be active. A frozen encoder stays in eval mode.
        self.train()
        self.checkpoint_reports = []  # what encoder_checkpoint / ltu_checkpoint matched, lacked, had extra
        if encoder_checkpoint:
            self.checkpoint_reports.append(load_encoder_checkpoint(self, encoder_checkpoint))
        if ltu_checkpoint:
            self.checkpoint_reports.append(load_ltu_checkpoint(self, ltu_checkpoint))
        for report in self.checkpoint_reports:
            rank_zero_info(f"[interleave] loaded {report}")

    # ---- the data flow -------------------------------------------------------------------

    def data_spec(self) -> DataSpec:
        """What the data module needs from this model (`InterleavedDataModule.connect`): the
        tokenizer, the audio positions per clip, the encoder's input loader and how much of a clip it hears."""
        if not self.audio_encoder.variable_length:
            return DataSpec(
                self.tokenizer, self.audio_tokens, self.audio_encoder.load_inputs, self.audio_encoder.heard_seconds
            )
        # A clip's span follows its length (a released family's tower, or its kind with random
        # weights); where no clip is at hand (the record checks, the index's lengths) a span counts
        # as the longest one, so a record that fits always fits.
        return DataSpec(
            self.tokenizer,
            self.audio_encoder.max_positions,
            self.audio_encoder.load_inputs,
            self.audio_encoder.heard_seconds,
            clip_positions=self.clip_positions,
            positions_for_samples=self.audio_encoder.positions_for_samples,
            template=None if self.released is None else self.released.chat_template(),
        )

    def clip_positions(self, inputs: torch.Tensor) -> int:
        """One clip's span length from its encoder inputs (a variable-length encoder's count)."""
        return int(self.audio_encoder.positions(inputs[None])[0])

    def audio_embeddings(
        self, audio: torch.Tensor | None = None, *, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """LLM embeddings [C, audio_tokens, H] of clips given as encoder inputs `audio` [C, ...]
        (an fbank for CAV-MAE) or as cached encoder `features` [C, audio_tokens, width]: exactly one."""
        if (audio is None) == (features is None):
            raise ValueError("give a clip batch's encoder inputs (audio) or its cached features, exactly one")
        if features is None:
            features = self.audio_encoder(audio)
        elif self.audio_encoder.variable_length:
            if features.dim() != 3 or features.shape[2] != self.audio_encoder.width:
                raise ValueError(
                    f"cached features must be [clips, positions, {self.audio_encoder.width}] "
                    f"(the encoder's width), got {list(features.shape)}"
                )
        elif tuple(features.shape[1:]) != (self.audio_tokens, self.audio_encoder.width):
            raise ValueError(
                f"cached features must be [clips, {self.audio_tokens}, {self.audio_encoder.width}] "
                f"(audio_tokens, the encoder's width), got {list(features.shape)}"
            )
        return self.audio_proj(features.to(projector_dtype(self.audio_proj)))

    def merge_embeddings(
        self,
        input_ids: torch.Tensor,
        audio_mask: torch.Tensor,
        audio: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with each audio span replaced by its clip's audio embeddings.

        The clips (encoder inputs `audio`, or cached `features`; the batch's key of the same name)
        are every clip of the batch, row by row and in placeholder order within a row, so a row
        with k spans takes the next k clips (`interleave.data.collate.span_starts`).
        Neither given is a text-only batch (no row may mark audio positions).
        """
        clips = audio if features is None else features
        if clips is None:
            if audio_mask.any():
                raise ValueError("audio_mask marks audio positions but no audio was given")
            return self.llm.get_input_embeddings()(input_ids)
        # masked_scatter fills the marked positions row by row, left to right: the clips stacked in
        # the collator's order (row by row, placeholder order within a row) land each in its own span.
        if self.audio_encoder.variable_length:
            return self._merge_variable(input_ids, audio_mask, audio, features)
        counts = audio_mask.sum(dim=1)
        if torch.any(counts % self.audio_tokens != 0) or int(counts.sum()) != self.audio_tokens * len(clips):
            raise ValueError(
                f"audio_mask must mark {self.audio_tokens} positions per clip ({len(clips)} clip(s) given), "
                f"got {counts.tolist()} per row"
            )
        embeds = self.llm.get_input_embeddings()(input_ids)
        audio_embeds = self.audio_embeddings(audio, features=features).to(embeds.dtype)
        return embeds.masked_scatter(audio_mask.unsqueeze(-1), audio_embeds)

    def _merge_variable(
        self,
        input_ids: torch.Tensor,
        audio_mask: torch.Tensor,
        audio: torch.Tensor | None,
        features: torch.Tensor | None,
    ) -> torch.Tensor:
        """`merge_embeddings` for spans of their clips' own lengths: each span a run of `audio_mask`
        as long as its clip's positions (the encoder's count, or the cached features' rows)."""
        clips = audio if features is None else features
        runs = [n for _, _, n in span_runs(audio_mask)]
        if features is None:
            expected = self.audio_encoder.positions(audio).tolist()
        else:
            expected = [n if n <= features.shape[1] else -1 for n in runs]
        if len(runs) != len(clips) or runs != expected:
            raise ValueError(
                f"audio_mask's spans {runs} do not match the {len(clips)} clip(s) given (positions {expected})"
            )
        embeds = self.llm.get_input_embeddings()(input_ids)
        encoded = self.audio_encoder(audio) if features is None else features
        keep = (
            torch.arange(encoded.shape[1], device=encoded.device)[None]
            < torch.tensor(runs, device=encoded.device)[:, None]
        )
        audio_embeds = self.audio_embeddings(features=encoded[keep][None])[0].to(embeds.dtype)
        return embeds.masked_scatter(audio_mask.unsqueeze(-1), audio_embeds)

    def batch_embeddings(self, batch: Batch) -> torch.Tensor:
        """`merge_embeddings` of a collated batch (its clips under `audio` or `audio_features`)."""
        return self.merge_embeddings(
            batch["input_ids"], batch["audio_mask"], batch.get("audio"), features=batch.get("audio_features")
        )

    def forward(self, batch: Batch) -> Any:
        """The LLM's full output (logits at every position, HF's loss) for a collated batch."""
        return self.llm(
            inputs_embeds=self.batch_embeddings(batch), attention_mask=batch["attention_mask"], labels=batch["labels"]
        )

    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean next-token cross-entropy over the positions `labels` keeps; equals `forward(batch).loss`.

        The LM head runs only where a label is set: with a 49k vocabulary it is a fifth of a
        small LLM's compute, and answers are a few tokens of each row.
        """
        embeds = self.batch_embeddings(batch)
        base = self.llm.get_base_model()
        hidden = base.get_decoder()(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).last_hidden_state
        targets = batch["labels"][:, 1:]
        keep = targets != IGNORE_INDEX
        logits = base.get_output_embeddings()(hidden[:, :-1][keep])
        return F.cross_entropy(logits.float(), targets[keep])

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        audio_mask: torch.Tensor,
        audio: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
        **generate_kwargs: Any,
    ) -> list[str]:
        """Decoded continuations of left-padded prompts (`interleave.model.generation.generate`); the
        clips as encoder inputs `audio` or cached `features`, as in `merge_embeddings`."""
        return generation.generate(
            self, input_ids, attention_mask, audio_mask, audio, features=features, **generate_kwargs
        )

    def generate_batch(self, batch: Batch, **generate_kwargs: Any) -> list[str]:
        """Generate from the answer-free, left-padded `prompt_*` part of an evaluation batch."""
        return self.generate(
            batch["prompt_input_ids"],
            batch["prompt_attention_mask"],
            batch["prompt_audio_mask"],
            batch.get("audio"),
            features=batch.get("audio_features"),
            **generate_kwargs,
        )

    # ---- Lightning hooks -----------------------------------------------------------------

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        loss = self.loss(batch)
        if not torch.isfinite(loss):
            return self.nonfinite_loss(loss, batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def nonfinite_loss(self, loss: torch.Tensor, batch: Batch) -> None:
        """Stop before the optimizer sees a NaN/inf (so no checkpoint with NaN weights follows), or skip the batch.

        Returning None makes Lightning skip backward and the optimizer step for this batch.
        """
        where = f"non-finite training loss ({loss.item()}) at step {self.global_step}, records {list(batch['ids'])}"
        # Under DDP a rank that skips its backward leaves the others waiting in the gradient all-reduce.
        distributed = self._trainer is not None and self.trainer.world_size > 1
        if self.hparams.get("on_nonfinite_loss", "error") == "error" or distributed:
            raise InterleaveError(
                f"{where}; stopped with the last good checkpoint kept "
                "(set model.on_nonfinite_loss=skip to skip such batches)"
            )
        self.skipped_nonfinite = getattr(self, "skipped_nonfinite", 0) + 1
        self.log("train/skipped_nonfinite", float(self.skipped_nonfinite), batch_size=len(batch["ids"]))
        rank_zero_info(f"[interleave] skipped batch: {where}")
        return None

    def _evaluate(self, batch: Batch, prefix: str) -> None:
        size = len(batch["ids"])
        self.log(f"{prefix}/loss", self.loss(batch), prog_bar=True, batch_size=size, sync_dist=True)
        if self.hparams.val_generate and "prompt_input_ids" in batch:
            texts = self.generate_batch(batch, max_new_tokens=self.hparams.val_max_new_tokens, do_sample=False)
            hits = [labels_match(t, ref) for t, ref in zip(texts, batch["references"])]
            accuracy = torch.tensor(hits, dtype=torch.float32).mean()
            self.log(f"{prefix}/label_accuracy", accuracy, prog_bar=True, batch_size=size, sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> list[dict[str, str]]:
        texts = self.generate_batch(batch, max_new_tokens=self.hparams.val_max_new_tokens, do_sample=False)
        return [{"id": i, "generated": t, "reference": r} for i, t, r in zip(batch["ids"], texts, batch["references"])]

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            self.trainable_parameters().values(), lr=hp.learning_rate, weight_decay=hp.weight_decay
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(hp.warmup_steps, total)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if hp.lr_schedule == "constant":
                return 1.0
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = set(self.trainable_parameters())
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        if self.released is not None:
            checkpoint[RELEASED_KEY] = self.released.identity()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if (problem := released_mismatch(self.released, checkpoint)) is not None:
            raise InterleaveError(f"checkpoint {problem}")
        missing = set(self.trainable_parameters()) - set(checkpoint["state_dict"])
        if missing:
            raise InterleaveError(
                f"checkpoint lacks {len(missing)} trainable weight(s), e.g. {sorted(missing)[:3]}; "
                "was it written with other LoRA, projector or model.train_encoder settings?"
            )
