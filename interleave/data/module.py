"""Records to batches: the LightningDataModule.

The model states what the data side needs (`interleave.spec.DataSpec`, from `AudioLLM.data_spec()`:
tokenizer, `audio_tokens`, the encoder's input loader) and the data module takes it once through
`connect(spec)`, which the command line does for every run (`interleave.cli`, and `build_run` for the tools).
`InterleavedDataModule.check_file` is what set-up runs on each file and what `interleave data
check --config` runs (the rules: `interleave.data.checks`): with `on_bad_record: error` set-up stops
with the full list, with `skip` it writes the rejects with their reasons to `rejects.jsonl` in the
run folder and logs how many there were.
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader, Dataset, Sampler

from interleave.data.audio_records import AudioRecords
from interleave.data.checks import DataError, load_checked
from interleave.data.clip_spans import ClipSpans
from interleave.data.collate import Collator
from interleave.data.mixture import MixedRecords, MixturePlan, MixtureSampler, mixture_sources
from interleave.data.prompts import ALPACA_SHORT, ALPACA_SHORT_INPUT, PromptTemplate
from interleave.data.record_index import (
    IndexedRecords,
    RecordIndex,
    open_index,
)
from interleave.data.records import EMPTY_FILE, NOT_FOUND, Problem, Record, is_json_array, not_a_file
from interleave.data.sampler import TrainingSampler
from interleave.encoders.audio import CHANNELS, Channel
from interleave.encoders.cache import CacheStats, FeatureCache, require_frozen
from interleave.errors import InterleaveError
from interleave.files import write_text_atomic
from interleave.progress import DEFAULT_INTERVAL, Progress
from interleave.spec import DataSpec


class InterleavedDataModule(L.LightningDataModule):
    """Training and validation records (JSONL contract or OpenAQA JSON) to collated batches.

    The model's side (tokenizer, audio positions per clip, encoder input loader) comes once through
    `connect(model.data_spec())`, which `train.py` and `interleave.cli.build_run` do, so data and
    model never disagree on it; `connect(DataSpec(tokenizer))` uses the module on its own. Set-up,
    `collator()` and `check_file` before `connect` raise an error saying so.
    Relative audio paths resolve against `audio_root`, by default the record file's folder.
    A JSONL record file is read through its record index (`interleave.data.record_index`: offsets,
    token lengths and check results, built once beside the file or in `index_dir`, then reused);
    records are read lazily. OpenAQA's JSON arrays are read whole.
    With `feature_cache` (a folder), the frozen encoder's features are computed once per clip at
    set-up (`interleave.encoders.cache`) and batches carry them as `audio_features` instead of `audio`.
    The training order comes from `interleave.data.sampler.TrainingSampler` (seeded per epoch, split by rank, resumable mid-epoch:
    checkpoints hold the position); `group_by_length` batches records of similar token length.
    `audio_channel` picks the channel of multi-channel audio: `first` (LTU's, the default) or
    `mean` (the channels averaged); the datasets, the feature cache and the SHARD evaluation use it.
    `written_by` names the command that writes the record files (the demo's: `interleave demo
    data/demo`): a run whose files are missing stops at once with that command in its message.
    It changes no result, so it is not a hyper-parameter (not in `hparams` nor the config hash).
    `train_files` (instead of `train_file`) is a weighted mixture of record files, each read and
    checked on its own, `epoch_records` its epoch length (`interleave.data.mixture`); unset, neither is
    a hyper-parameter, so a one-file run's config hash stays what it was.

    Args:
        train_file: the training records (JSONL, or OpenAQA's JSON).
        val_file: the validation records.
        test_file: the records of `test`.
        predict_file: the records of `predict`.
        audio_root: the folder relative audio paths resolve against; default each record file's folder.
        val_fraction: without `val_file`, the share of `train_file` held out for validation.
        batch_size: records per training batch.
        eval_batch_size: records per validation, test or predict batch; default `batch_size`.
        num_workers: the data loaders' worker processes.
        max_length: the most token positions of a record (text and audio); a longer one is a bad record.
        train_on_prompt: also train on the prompt's tokens, not only the answer's.
        prompt_template: the prompt of a record without `input` (`{instruction}`).
        prompt_template_input: the prompt of a record with `input` (`{instruction}`, `{input}`).
        on_bad_record: stop with every bad record listed (`error`) or train without them (`skip`).
        check_audio_decode: read every clip with the encoder's loader at set-up, not only check it exists.
        feature_cache: a folder caching the frozen encoder's features (computed once per clip).
        group_by_length: batch records of similar token length.
        seed: the seed of the training order (per epoch) and of `val_fraction`'s split.
        audio_channel: the channel of multi-channel audio: `first` (LTU's) or `mean`.
        index_dir: the folder of the record indexes; default beside each record file.
        written_by: the command that writes the record files, named if they are missing.
        train_files: a weighted mixture of record files, `[{path, weight[, name]}, ...]`, instead
            of `train_file`.
        epoch_records: a mixture's epoch length; default the total of its files' usable records.
    """

    def __init__(
        self,
        train_file: str | None = None,
        val_file: str | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        audio_root: str | None = None,
        val_fraction: float = 0.0,
        batch_size: int = 4,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        max_length: int = 512,
        train_on_prompt: bool = False,
        prompt_template: str = ALPACA_SHORT,
        prompt_template_input: str = ALPACA_SHORT_INPUT,
        on_bad_record: Literal["error", "skip"] = "error",
        check_audio_decode: bool = False,
        feature_cache: str | None = None,
        group_by_length: bool = False,
        seed: int = 0,
        audio_channel: Channel = "first",
        index_dir: str | None = None,
        written_by: str | None = None,
        train_files: list[dict[str, Any]] | None = None,
        epoch_records: int | None = None,
    ) -> None:
        super().__init__()
        if audio_channel not in CHANNELS:
            raise InterleaveError(f"data.audio_channel must be one of {list(CHANNELS)}, not {audio_channel!r}")
        self.sources = mixture_sources(train_files, epoch_records, train_file, val_fraction > 0 and not val_file)
        unset = [k for k, v in {"train_files": train_files, "epoch_records": epoch_records}.items() if v is None]
        self.save_hyperparameters(ignore=["written_by", *unset])
        self.written_by = written_by
        self._spec: DataSpec | None = None
        self.template = PromptTemplate(prompt_template, prompt_template_input)
        self.train_set: AudioRecords | None = None
        self.val_set: AudioRecords | None = None
        self.test_set: AudioRecords | None = None
        self.predict_set: AudioRecords | None = None
        self.rejected: list[Problem] = []
        self.feature_store: FeatureCache | None = None
        self.train_sampler: TrainingSampler | None = None
        self._resume_position: dict[str, int] | None = None
        self.mixture: MixturePlan | None = None
        self.rejected_by_source: dict[str, int] = {}

    def connect(self, spec: DataSpec) -> None:
        """Take the model's side of the contract (`AudioLLM.data_spec()`), once, before set-up."""
        self._spec = spec

    @property
    def spec(self) -> DataSpec:
        """The connected model's `DataSpec`; an error saying what to do when none is connected yet."""
        if self._spec is None:
            raise InterleaveError(
                f"{type(self).__name__} is not connected to a model: call "
                "datamodule.connect(model.data_spec()) first (train.py and "
                "interleave.cli.build_run do it for every run)"
            )
        return self._spec

    @property
    def tokenizer(self) -> Any:
        return self.spec.tokenizer

    def load_audio(self, path: str | Path) -> torch.Tensor:
        """One clip's encoder inputs, as training reads it: the model's loader, this run's channel."""
        return self.spec.audio_loader(path, self.audio_channel)

    def collator(self, audio_root: str | Path | None = None, **kwargs: Any) -> Collator:
        """The run's collator (template, `max_length`, the model's tokenizer and span length);
        `kwargs` go to `Collator` (`padding_side`, `with_answer`, `with_prompt_batch`). For a family
        whose span follows the clip, `audio_root` lets it read a record's spans from its clips'
        headers where the clips are not loaded (the checks, the index's lengths)."""
        spans = self.spec.positions_for_samples
        if spans is not None and self.spec.clip_positions is not None and audio_root is not None:
            kwargs["clip_spans"] = ClipSpans(Path(audio_root), spans)
        return Collator.of_spec(
            self.spec,
            self.template,
            max_length=self.hparams.max_length,
            train_on_prompt=self.hparams.train_on_prompt,
            **kwargs,
        )

    def prepare_data(self) -> None:
        """Before set-up: with `written_by`, a record file that does not exist stops the run, naming
        the command that writes it."""
        hp = self.hparams
        files = (hp.train_file, *(s.path for s in self.sources), hp.val_file, hp.test_file, hp.predict_file)
        missing = [f for f in files if f and not Path(f).exists()]
        if missing and self.written_by:
            raise InterleaveError(f"{missing[0]} does not exist: write it with `{self.written_by}`")

    def audio_root_of(self, path: str | Path) -> Path:
        """Where the clips of the record file `path` are: `data.audio_root`, else the file's folder."""
        return self._root(str(path))

    def _root(self, path: str) -> Path:
        return Path(self.hparams.audio_root) if self.hparams.audio_root else Path(path).parent

    def _index(self, path: str, root: Path | None = None) -> RecordIndex:
        """The record index of `path`; under DDP the first process of each node builds it while the
        others wait, then they all memory-map it (a file lock covers nodes sharing one folder)."""
        root = self._root(path) if root is None else root
        trainer, collator, folder = self.trainer, self.collator(root), self.hparams.get("index_dir")
        many = trainer is not None and trainer.world_size > 1
        index = open_index(path, collator, folder, rank_zero_info) if not many or trainer.local_rank == 0 else None
        if many:
            trainer.strategy.barrier("record_index")
        return index or open_index(path, collator, folder)

    def check_file(
        self,
        path: str | Path,
        decode: bool | None = None,
        audio_root: str | Path | None = None,
        split: list[str] | None = None,
    ) -> tuple[Sequence[Record], list[Problem]]:
        """(good records, problems) of one record file as this run sees it: its template, tokenizer,
        `max_length`, `audio_tokens`, and with `decode` (default `check_audio_decode`) its encoder
        loader and channel. Set-up and `interleave data check --config` both call this."""
        path = str(path)
        root = Path(audio_root) if audio_root is not None else self._root(path)
        decode = self.hparams.check_audio_decode if decode is None else decode
        load = self.load_audio if decode else None
        kind = not_a_file(path)
        if kind not in (None, NOT_FOUND):  # a directory, a FIFO (opening it would wait forever), a device
            raise InterleaveError(f"{path}: {kind}, not a record file")
        try:
            with open(path, "rb") as handle:
                indexed = not is_json_array(Path(path), handle.read(4096))
        except OSError:
            indexed = False  # read_records names the problem
        if indexed:
            return self._index(path, root).checked(root, load, split)
        return load_checked(path, root, self.collator(root), load, split)

    def _load(self, path: str) -> Sequence[Record]:
        split: list[str] = []
        records, problems = self.check_file(path, split=split)
        if not records and problems and all(p.reason == EMPTY_FILE for p in problems):
            raise DataError(problems)  # nothing to skip to
        if split:
            rank_zero_info(
                f"[interleave] {path}: {len(split)} record(s) have a text token split where [AUDIO] "
                f"stands (the placeholder sits inside a word), e.g. {split[0]}"
            )
        if problems:
            if self.hparams.on_bad_record == "error":
                raise DataError(problems)
            self.rejected.extend(problems)
        return records

    def _dataset(self, records: Sequence[Record], path: str) -> AudioRecords:
        """`records` of the file `path` with their audio, loaded as the model's encoder reads it."""
        return AudioRecords(records, self._root(path), channel=self.audio_channel, load_inputs=self.spec.audio_loader)

    def setup(self, stage: str | None = None) -> None:
        self.spec  # noqa: B018  (refuses a module that is not connected, before any work)
        self.rejected = []
        hp = self.hparams
        if stage in (None, "fit", "validate"):
            split = not hp.val_file and hp.val_fraction > 0  # validation comes out of the training file
            train = self._load(hp.train_file) if hp.train_file and (stage != "validate" or split) else []
            val = self._load(hp.val_file) if hp.val_file else []
            if split and train:
                order = list(range(len(train)))
                random.Random(hp.seed).shuffle(order)
                train = train.subset(order) if isinstance(train, IndexedRecords) else [train[i] for i in order]
                n_val = max(1, round(len(train) * hp.val_fraction))
                val, train = train[:n_val], train[n_val:]
            if train:
                self.train_set = self._dataset(train, hp.train_file)
            if self.sources and stage != "validate":
                self.train_set = self._mixed()
            if val:
                self.val_set = self._dataset(val, hp.val_file or hp.train_file)
        if stage in (None, "test") and (path := hp.test_file or hp.val_file):
            self.test_set = self._dataset(self._load(path), path)
        if stage in (None, "predict") and (path := hp.predict_file or hp.val_file):
            self.predict_set = self._dataset(self._load(path), path)
        if self.rejected:
            self._write_rejects()
        if hp.feature_cache and self.trainer is not None:
            self._use_feature_cache(self.trainer)

    def _mixed(self) -> MixedRecords:
        """`train_files`' records, each file checked on its own (in `error` mode all their problems at once)."""
        parts, problems = [], []
        for source in self.sources:
            before = len(self.rejected)
            try:
                parts.append(self._dataset(self._load(source.path), source.path))
            except DataError as err:
                problems += err.problems
            self.rejected_by_source[source.name] = len(self.rejected) - before
        if problems:
            raise DataError(problems)
        self.mixture = MixturePlan(
            self.sources, [len(p) for p in parts], self.hparams.get("epoch_records"), self.hparams.seed
        )
        rank_zero_info(self.mixture.summary(self.rejected_by_source))
        return MixedRecords(parts)

    def drawn(self, epoch: int) -> dict[str, int]:
        """Records drawn from each of `train_files` in `epoch` ({} without a mixture): `RunSummary`
        logs them as `data/drawn/<name>`, which the metrics files pick up."""
        return self.mixture.drawn(epoch) if self.mixture is not None else {}

    @property
    def audio_channel(self) -> Channel:
        """Which channel of multi-channel audio this run reads (`first` or `mean`)."""
        return self.hparams.get("audio_channel", "first")

    def _sets(self) -> list[AudioRecords]:
        return [d for d in (self.train_set, self.val_set, self.test_set, self.predict_set) if d is not None]

    def fill_feature_cache(
        self, encoder: Any, clips: Sequence[str] = (), progress_every: float = DEFAULT_INTERVAL
    ) -> CacheStats:
        """Compute the features of every clip of the loaded sets (and of `clips`, e.g. a SHARD's, which
        `interleave cache` reads) not cached yet, showing clips done / total and clips/s on stderr
        (`interleave.progress`: a bar on a terminal, else a line every `progress_every` seconds)."""
        self.feature_store = FeatureCache.of(self.hparams.feature_cache, encoder, self.audio_channel)
        paths = [p for d in self._sets() for p in d.paths()]
        paths += list(clips)
        distinct = list(dict.fromkeys(str(p) for p in paths))
        with Progress(len(distinct), "clips", "[interleave] feature cache", interval=progress_every) as progress:
            return self.feature_store.ensure(encoder, distinct, progress=progress)

    def _use_feature_cache(self, trainer: L.Trainer) -> None:
        """Rank 0 fills the cache while the others wait; then every set reads from it."""
        encoder = trainer.lightning_module.audio_encoder
        require_frozen(encoder)  # on every rank, so none waits at the barrier for a rank that stopped
        if trainer.is_global_zero:
            stats = self.fill_feature_cache(encoder)
            rank_zero_info(f"[interleave] feature cache {self.feature_store.folder}: {stats}")
            for entry in stats.damaged:
                rank_zero_warn(f"damaged feature cache entry rebuilt: {entry}")
        trainer.strategy.barrier("feature_cache")
        if self.feature_store is None:  # the other ranks
            self.feature_store = FeatureCache.of(self.hparams.feature_cache, encoder, self.audio_channel)
        for dataset in self._sets():
            dataset.cache = self.feature_store

    def _write_rejects(self) -> None:
        folder = Path(self.trainer.log_dir) if self.trainer is not None and self.trainer.log_dir else Path.cwd()
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / "rejects.jsonl"
        write_text_atomic(out, "".join(json.dumps(asdict(problem)) + "\n" for problem in self.rejected))
        rank_zero_warn(f"skipped {len(self.rejected)} bad record(s); reasons in {out}")
        if self.trainer is not None and self.trainer.logger is not None:
            counts = {f"data/rejected_records/{name}": n for name, n in self.rejected_by_source.items()}
            self.trainer.logger.log_metrics({"data/rejected_records": len(self.rejected), **counts}, step=0)

    def _loader(
        self, dataset: Dataset | None, batch_size: int, collator: Collator, sampler: Sampler | None = None
    ) -> DataLoader:
        """Batches of `dataset` in `sampler`'s order (training) or in file order (evaluation)."""
        if dataset is None:
            return []  # Lightning treats an empty list as "no batches"
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.hparams.num_workers,
            collate_fn=collator,
            # Its own generator (for worker seeds), so opening a loader leaves the global one alone.
            generator=torch.Generator().manual_seed(self.hparams.seed),
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        collator = self.collator(padding_side="right")
        if self.train_set is None:
            return self._loader(None, self.hparams.batch_size, collator)
        lengths = None
        if self.hparams.group_by_length:
            lengths = self.train_set.lengths(collator)
        trainer = self.trainer
        ranks = {"num_replicas": trainer.world_size if trainer else 1, "rank": trainer.global_rank if trainer else 0}
        size = self.hparams.batch_size
        self.train_sampler = (
            MixtureSampler(self.mixture, size, lengths, **ranks)
            if self.mixture is not None
            else TrainingSampler(len(self.train_set), size, lengths, seed=self.hparams.seed, **ranks)
        )
        if self._resume_position:
            self._resume(self._resume_position)
        return self._loader(self.train_set, self.hparams.batch_size, collator, self.train_sampler)

    def state_dict(self) -> dict[str, Any]:
        """Where training stands in its epoch, saved in every checkpoint so a resume continues there."""
        trainer = self.trainer
        if self.train_sampler is None or trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return {}
        mixture = {"mixture": self.mixture.describe()} if self.mixture is not None else {}
        return {
            "train_position": {
                "epoch": self.train_sampler.epoch,
                "batches_done": trainer.fit_loop.epoch_loop.batch_progress.current.processed,
                "batch_size": self.hparams.batch_size,
                "world_size": trainer.world_size,
                **mixture,
            }
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume_position = state_dict.get("train_position")

    def _resume(self, position: dict[str, int]) -> None:
        now = (self.hparams.batch_size, self.train_sampler.num_replicas)
        if (position["batch_size"], position["world_size"]) != now:
            rank_zero_warn(
                f"resuming with batch size {now[0]} on {now[1]} "
                f"process(es), not {position['batch_size']} on {position['world_size']}: epoch "
                f"{position['epoch']} starts again from its first batch"
            )
            return
        if self.mixture is not None and position.get("mixture") != self.mixture.describe():
            return rank_zero_warn(
                f"resuming with another mixture of training files than {position.get('mixture')}: "
                f"epoch {position['epoch']} starts again from its first batch"
            )
        self.train_sampler.resume_from(position["epoch"], position["batches_done"])
        # Lightning cannot see that this sampler resumes, and would warn that the data order is unreliable.
        warnings.filterwarnings(
            "ignore",
            message="You're resuming from a checkpoint that ended before the epoch",
            category=PossibleUserWarning,
        )

    def _eval_loader(self, dataset: Dataset | None) -> DataLoader:
        size = self.hparams.eval_batch_size or self.hparams.batch_size
        return self._loader(dataset, size, self.collator(padding_side="right", with_prompt_batch=True))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.predict_set)
