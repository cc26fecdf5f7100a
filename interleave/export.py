"""Export a training checkpoint for use outside Lightning:
`python -m interleave.export CKPT OUT_DIR` writes the LoRA adapter in peft's own format
(`OUT_DIR/lora`, loadable with `PeftModel.from_pretrained`), the projector as safetensors
(`OUT_DIR/projector.safetensors`, LTU's key names) and the model's settings (`OUT_DIR/model.json`);
for a model trained with `model.train_encoder: true`, also the encoder (`OUT_DIR/encoder.safetensors`,
CAV-MAE's key names).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from safetensors.torch import save_file

from interleave.errors import InterleaveError


def export(checkpoint: str | Path, out_dir: str | Path) -> Path:
    from interleave.model import AudioLLM

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if not checkpoint.is_file():
        raise InterleaveError(f"checkpoint not found: {checkpoint}")
    with warnings.catch_warnings():
        # Frozen weights are absent by design; AudioLLM.on_load_checkpoint checks the trainable ones.
        warnings.filterwarnings("ignore", message="Found keys that are in the model state dict")
        model = AudioLLM.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.llm.save_pretrained(out_dir / "lora")
    projector = {f"audio_proj.{k}": v.contiguous() for k, v in model.audio_proj.state_dict().items()}
    save_file(projector, out_dir / "projector.safetensors")
    if model.hparams.get("train_encoder"):
        encoder = {k: v.contiguous() for k, v in model.audio_encoder.state_dict().items()}
        save_file(encoder, out_dir / "encoder.safetensors")
    (out_dir / "model.json").write_text(json.dumps(dict(model.hparams), indent=2, default=str))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interleave.export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        out = export(args.checkpoint, args.out_dir)
    except InterleaveError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'lora'} (peft adapter) and {out / 'projector.safetensors'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
