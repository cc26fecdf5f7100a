"""Fill a run's feature cache ahead of time: `interleave cache --config CONFIG [--data.feature_cache DIR]`.

Computes the frozen encoder's features of every clip of the run's training, validation, test and
predict sets and of its SHARD files (`interleave.encoders.cache`), so that the run itself starts at once.
Any `train.py` override works here too (`--data.train_file ...`). Entries already there are
checked as a run checks them (`FeatureCache.get`): one that is not the clip's (another clip's
entry copied over it, another version of the file) or is damaged is counted, named on stderr with
what was wrong, and computed again.
"""

from __future__ import annotations

import sys

from callbacks.shard_eval import ShardEvaluation
from interleave.cli import build_run
from interleave.encoders.cache import require_frozen
from interleave.errors import InterleaveError, report_errors
from interleave.eval.format import read_shard


def fill(args: list[str]) -> None:
    """Build the run the config describes (without running it) and fill its cache."""
    run = build_run(args, prog="interleave cache")
    datamodule, model = run.datamodule, run.model
    if not datamodule.hparams.feature_cache:
        raise InterleaveError(
            "set data.feature_cache (the cache folder) in the config or with --data.feature_cache DIR"
        )
    require_frozen(model.audio_encoder)  # model.train_encoder: true
    datamodule.prepare_data()
    datamodule.setup(None)  # every set the config names: training, validation, test, predict
    shard_files = [c.shard_file for c in run.trainer.callbacks if isinstance(c, ShardEvaluation)]
    clips = [clip for f in shard_files for q in read_shard(f) for clip in q.clips]
    stats = datamodule.fill_feature_cache(model.audio_encoder, clips)
    for entry in stats.damaged:
        print(f"[interleave] damaged feature cache entry rebuilt: {entry}", file=sys.stderr)
    print(f"[interleave] feature cache {datamodule.hparams.feature_cache}: {stats}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return report_errors(lambda: fill(args))


if __name__ == "__main__":
    sys.exit(main())
