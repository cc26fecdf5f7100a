"""Export a training checkpoint for use outside Lightning.

`interleave export CKPT OUT_DIR` writes the LoRA adapter in peft's own format
(`OUT_DIR/lora`, loadable with `PeftModel.from_pretrained`), the projector as safetensors
(`OUT_DIR/projector.safetensors`, LTU's key names) and the model's settings (`OUT_DIR/model.json`);
for a model trained with `model.train_encoder: true`, also the encoder (`OUT_DIR/encoder.safetensors`,
CAV-MAE's key names). A model of a released family (`model.pretrained`) also gets `OUT_DIR/released`:
one peft adapter of the released transformers class (Qwen2-Audio: LoRA on its language model, the
trained projector a module to save), loaded with `PeftModel.from_pretrained(
Qwen2AudioForConditionalGeneration.from_pretrained(FOLDER), OUT_DIR/released)`.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from interleave.checkpoints import load_weights
from interleave.errors import report_errors
from interleave.files import atomic_path, write_text_atomic

DESCRIPTION = (
    "Export a training checkpoint for use outside Lightning: the LoRA adapter in peft's format "
    "(OUT_DIR/lora), the projector (OUT_DIR/projector.safetensors), the model's settings "
    "(OUT_DIR/model.json) and, for a model trained with model.train_encoder: true, the encoder "
    "(OUT_DIR/encoder.safetensors)."
)


def export(checkpoint: str | Path, out_dir: str | Path) -> Path:
    from interleave.model.module import AudioLLM  # here, so that `interleave export --help` needs no torch

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    load_weights(checkpoint)  # the one safe loader: a missing, cut-short or code-carrying file is refused by name
    with warnings.catch_warnings():
        # Frozen weights are absent by design; AudioLLM.on_load_checkpoint checks the trainable ones.
        warnings.filterwarnings("ignore", message="Found keys that are in the model state dict")
        model = AudioLLM.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.llm.save_pretrained(out_dir / "lora")
    projector = {f"audio_proj.{k}": v.contiguous() for k, v in model.audio_proj.state_dict().items()}
    with atomic_path(out_dir / "projector.safetensors") as tmp:
        save_file(projector, tmp)
    if model.hparams.get("train_encoder"):
        encoder = {k: v.contiguous() for k, v in model.audio_encoder.state_dict().items()}
        with atomic_path(out_dir / "encoder.safetensors") as tmp:
            save_file(encoder, tmp)
    write_text_atomic(out_dir / "model.json", json.dumps(dict(model.hparams), indent=2, default=str))
    if model.released is not None:
        write_released_adapter(model, out_dir / "released")
    return out_dir


def write_released_adapter(model: Any, folder: Path) -> Path:
    """The model's LoRA and projector as a peft adapter of its released class (`released_adapter`)."""
    from interleave.model.pretrained import released_adapter

    config, weights = released_adapter(model, model.released)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    with atomic_path(folder / "adapter_model.safetensors") as tmp:
        save_file(weights, tmp, metadata={"format": "pt"})
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interleave export", description=DESCRIPTION)
    parser.add_argument("checkpoint", type=Path, metavar="CKPT", help="a checkpoint that train.py fit wrote (.ckpt)")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="the folder to write into (made if absent)")
    args = parser.parse_args(argv)

    def run() -> None:
        out = export(args.checkpoint, args.out_dir)
        print(f"wrote {out / 'lora'} (peft adapter) and {out / 'projector.safetensors'}")

    return report_errors(run)


if __name__ == "__main__":
    sys.exit(main())
