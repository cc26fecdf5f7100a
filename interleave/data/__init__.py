"""The data side: records, prompts and the `[AUDIO]` rule, token counts and the record checks, the
record index, collation, the training order (one file or a mixture) and the LightningDataModule.

`records` (the JSONL contract, OpenAQA's adapter), `prompts` (templates, the placeholder rule),
`token_count` (`measure_records`, the one record rule), `checks` (every problem of a record file),
`record_index` (a file's offsets, lengths and checks, built once), `collate` (records -> batches),
`sampler` and `mixture` (the training order), `module` (`InterleavedDataModule`). What it needs from
the model comes through `interleave.spec.DataSpec`; it imports neither the model nor the evaluation.

`interleave.data.InterleavedDataModule` (the shipped configs' and saved runs' `class_path`) and the
other names this package held as one module are found here when first asked for, so importing
`interleave.data.records` loads neither Lightning nor the encoders.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("InterleavedDataModule", "AudioRecords"):
        from interleave.data import module

        return getattr(module, name)
    if name in ("DataError", "check_records", "load_checked"):
        from interleave.data import checks

        return getattr(checks, name)
    if name == "DataSpec":
        from interleave.spec import DataSpec

        return DataSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
