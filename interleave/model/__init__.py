"""The model side: the LightningModule (`module`: frozen encoder -> projector -> LoRA LLM, loss),
where the LLM comes from (`llm`), both generation paths (`generation`), LTU's released checkpoint
(`ltu`), a model between two trained states (`interpolate`) and a checkpoint's trained state that
fits a config (`fitting`). It states what the data side needs in `interleave.spec.DataSpec` and
imports neither the data module nor the evaluation.

`interleave.model.AudioLLM` is found here when first asked for, so importing `interleave.model.llm`
or `interleave.model.generation` does not build the LightningModule's imports (Lightning, peft).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "AudioLLM":
        from interleave.model.module import AudioLLM

        return AudioLLM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
