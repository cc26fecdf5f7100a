"""SHARD and identity evaluation during training: the forgetting curves, as they happen."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from callbacks.benchmarks import BENCH_ROWS, Benchmarks, write_rows
from callbacks.benchmarks import summary as bench_summary
from callbacks.curves import (
    CurvePoint,
    closing_table,
    describe_for_tensorboard,
    publish_curves,
    run_hparams,
    samples_markdown,
)
from callbacks.points import CheckpointPoint, EvaluatedPoint, Loaded, evaluating, trained_epochs, write_point
from callbacks.query_progress import _RichTask, query_progress
from callbacks.retention import Retention
from callbacks.retention import summary as retention_summary
from interleave.data.module import InterleavedDataModule
from interleave.errors import InterleaveError
from interleave.eval.benchmarks.evaluate import RunSettings
from interleave.eval.benchmarks.items import decode_check
from interleave.eval.evaluate import EvalInputs, Evaluated, EvaluationStopped, Point, evaluate
from interleave.eval.format import read_shard
from interleave.eval.query import Query
from interleave.eval.settings import EvalSettings
from interleave.eval.tasks import TASKS, parse_tag
from interleave.model.generation import Sampling
from interleave.model.module import AudioLLM
from interleave.progress import Progress
from interleave.provenance import provenance


def eval_inputs(data: object) -> EvalInputs:
    """What the evaluation takes from a run's data module (an `interleave.data.InterleavedDataModule`):
    its collation (left-padded, answer-free), feature cache and channel. The callback, the frontier
    and the playground read them here, so the evaluation never imports the data module."""
    if not isinstance(data, InterleavedDataModule):
        raise InterleaveError(
            f"the SHARD evaluation needs the run's data module to be an "
            f"interleave.data.InterleavedDataModule, got {type(data).__name__}"
        )
    return EvalInputs(data.collator(padding_side="left", with_answer=False), data.feature_store, data.audio_channel)


class ShardEvaluation(L.Callback):
    """Runs SHARD (synonym, hypernym) and identity at the end of every `every_n_epochs`-th
    validation epoch, and once before the first training step (epoch 0 of the curves).

    Conditions: `layout` is logged under the project's tags (`val/shard/synonym/f1`,
    `val/identity/accuracy`, ...); each of `extra_layouts` under `val/<layout>/...`; the
    text-only control (the word replaces the audio) under `val/text/shard/...`. The evaluation's
    options (all but `shard_file`, `identity`, `every_n_epochs`, `before_training` and
    `text_samples`) become one `interleave.eval.settings.EvalSettings` (`settings`, built by
    `EvalSettings.of_options`), which the playground and the benches use too. Prompts are collated
    as the run's data module collates (its template, `max_length` and audio channel).

    Files, in the run folder: `predictions/epoch=NN.jsonl` (every answer, raw and parsed, so that
    `interleave report --parser` can re-score them; it refuses another parser for cut answers) and
    `predictions/epoch=NN.metrics.json` (every logged metric, flat, with the `layout`, the `parser`
    used and how many rows the predictions file holds, `prediction_rows`), and `curves.png` /
    `curves.csv` (the forgetting curves so far), logged as an image through every logger that
    takes one. TensorBoard also gets a few answers as text, a Custom Scalars layout "forgetting"
    and the run's settings in HParams (`callbacks.curves`); the end of a fit prints the curves as
    a table. `NN` counts the training epochs done: under `validate`, 0 for the config's model (before
    training); for `validate --ckpt_path X`, the epochs X's weights were trained, and the metrics
    file names X (`ckpt_path`): a checkpoint evaluated on its own is never filed as before training.
    What it keeps in a checkpoint (`state_dict`) is plain data: the points evaluated so far.

    Args:
        shard_file: the SHARD file (JSONL, one query a line); every clip it names must exist.
        layout: the main condition (`interleaved` or `noninterleaved`, or any registered name of
            `interleave.eval.tasks.CONDITIONS`), logged under plain `val/`.
        extra_layouts: more conditions, each logged under `val/<condition>/`.
        text_control: also ask the text-only control (the word where the audio stood), `val/text/`.
        identity: also ask the identity queries ("Can you list the labels ...").
        repeats: answers sampled per query (the paper's 4).
        every_n_epochs: evaluate after every N-th training epoch.
        before_training: evaluate once before the first training step (epoch 0 of the curves).
        batch_size: queries answered together.
        sampling: how answers are generated (`interleave.model.generation.Sampling`: LTU's settings
            with a 32-token cap by default).
        prompts: overrides of Table 1's prompts, {task: {layout: template}}.
        seed: the seed of the answers' streams, the probes and the subset.
        text_samples: answers per task shown as text in TensorBoard at each point.
        scoring: also score each yes/no query deterministically (P(yes) vs P(no) of the first
            answer token, one forward pass), logged as `.../scored_{accuracy,f1}`.
        parser: `interleave.eval.answers.parse_answer`'s rules for the yes/no answers: "paper"
            (the paper's phrases) or "extended" (wider).
        full_answers: generate every answer to EOS or the cap; by default a yes/no answer stops as
            soon as its parsed verdict can no longer change (`settled_answer`: the same verdicts, at a
            fraction of the cost), marked `cut` in the predictions file. Identity answers always run
            to the end.
        probes: conditions asked like the text control, on the same queries, repeats and seeds,
            that also log their `agreement` with `layout`'s answers under `val/<probe>/...`: the clip
            probes `silence`, `noise` and `swap`, the placements `question_start` and
            `question_end`, or any registered condition (issue 26; none by default).
        max_queries_per_task: ask at most N queries of each task, a fixed subset chosen by word and
            clip (`interleave.eval.settings.capped_queries`, seeded by `seed`) for a quick check;
            null asks every query. The metrics file records it as `shard_subset`, and
            `interleave report` refuses to put the run beside one evaluated on another subset.
        benchmarks: multiple-choice benchmarks in MMAU's format (issue 37; none by default), each a
            mapping (`interleave.eval.benchmarks.evaluate.BenchmarkConfig`: name, file, audio_root,
            subset, seed, scorings, controls, rule, norm, prompts, max_length, whole_at_end) asked at
            every point after the SHARD, with the run's sampling, repeats, batch size and main layout,
            logged under `val/bench/<name>/...`, their rows in `predictions/epoch=NN.bench.jsonl`
            (`callbacks.benchmarks`; docs/benchmarks.md); with `whole_at_end`, every item once more
            when the fit ends (`val/bench/<name>/whole/...`). `shard_file` may then be left out.
        retention: held-out texts whose perplexity under the LLM (adapter active) is logged at every
            point (issue 39; none by default), each a mapping
            (`interleave.eval.retention.RetentionConfig`: name, file, tokens, seed, batch_size), logged
            under `val/retention/<name>/perplexity`, its per-segment sums in the metrics file
            (`callbacks.retention`; docs/retention.md). `shard_file` may then be left out.
    """

    def __init__(
        self,
        shard_file: str | None = None,
        layout: str = "interleaved",
        extra_layouts: list[str] | None = None,
        text_control: bool = True,
        identity: bool = True,
        repeats: int = 4,
        every_n_epochs: int = 1,
        before_training: bool = True,
        batch_size: int = 16,
        sampling: Sampling = Sampling(),
        prompts: dict[str, dict[str, str]] | None = None,
        seed: int = 0,
        text_samples: int = 6,
        scoring: bool = False,
        parser: Literal["paper", "extended"] = "paper",
        full_answers: bool = False,
        probes: list[str] | None = None,
        max_queries_per_task: int | None = None,
        benchmarks: list[dict[str, Any]] | None = None,
        retention: list[dict[str, Any]] | None = None,
    ) -> None:
        if every_n_epochs < 1:
            raise InterleaveError("ShardEvaluation: every_n_epochs must be at least 1")
        try:
            self.settings = EvalSettings.of_options(
                layout=layout,
                extra_layouts=extra_layouts,
                text_control=text_control,
                probes=probes,
                sampling=sampling,
                repeats=repeats,
                parser=parser,
                batch_size=batch_size,
                seed=seed,
                prompts=prompts,
                full_answers=full_answers,
                scoring=scoring,
                max_queries_per_task=max_queries_per_task,
            )
        except InterleaveError as err:
            raise InterleaveError(f"ShardEvaluation: {err}") from None
        try:
            self.benchmarks = Benchmarks(benchmarks)  # multiple-choice benchmarks beside the SHARD (issue 37)
            self.retention = Retention(retention)  # held-out text's perplexity beside the SHARD (issue 39)
        except InterleaveError as err:
            raise InterleaveError(f"ShardEvaluation: {err}") from None
        if shard_file is None and not self.benchmarks and not self.retention:
            raise InterleaveError("ShardEvaluation: give a shard_file, benchmarks, retention, or some of them")
        self.shard_file = shard_file
        self.identity = identity
        self.every_n_epochs = every_n_epochs
        self.before_training = before_training
        self.text_samples = text_samples
        self.queries: list[Query] = []
        self.shard_subset: str | None = None  # the metrics file's `shard_subset` when the queries are capped
        self.features: dict[str, torch.Tensor] = {}  # encoder features per clip (see point_features)
        self.history: list[CurvePoint] = []  # one entry per evaluated point, for the curves (plain data)
        self._pending: EvaluatedPoint | None = None
        self._described = False  # TensorBoard's layout and HParams are written once per run
        self.curves: Path | None = None  # curves.png, once a point is published
        self._loaded = Loaded()  # outside a fit: the checkpoint evaluated on its own (on_load_checkpoint)

    # ---- Lightning hooks -----------------------------------------------------------------

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.retention:
            self.retention.load(pl_module)
        if self.benchmarks:
            self.benchmarks.load(
                pl_module.audio_encoder.heard_seconds,
                decode_check(getattr(trainer.datamodule, "audio_channel", "first")),
            )
        if self.queries or self.shard_file is None:
            return
        self.queries = read_shard(self.shard_file)
        if not self.identity:
            self.queries = [q for q in self.queries if q.task != "identity"]
        missing = sorted({c for q in self.queries for c in q.clips if not Path(c).is_file()})
        if missing:
            listed = "\n".join(f"  {p}" for p in missing[:20])
            raise InterleaveError(f"{self.shard_file}: {len(missing)} audio file(s) not found:\n{listed}")
        every, self.shard_subset = len(self.queries), self.settings.subset(self.queries)
        self.queries = self.settings.asked(self.queries)  # every clip is checked above, the asked ones or not
        asked = (
            f"{len(self.queries)} of {every} queries ({self.shard_subset})" if self.shard_subset else f"{every} queries"
        )
        rank_zero_info(
            f"[interleave] SHARD: {asked} x {self.settings.repeats} repeats, "
            f"conditions {list(self.settings.conditions)}, from {self.shard_file}"
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.before_training and trainer.global_step == 0 and not any(h["epoch"] == 0 for h in self.history):
            result = self._evaluate_and_log(trainer, pl_module, epoch=0)
            self._publish(trainer, result, {})

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        fitting = trainer.state.fn == "fit"
        if fitting and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # a mid-epoch validation (val_check_interval < 1): the curves have one point per epoch
        epoch = trainer.current_epoch + 1 if fitting else trainer.current_epoch
        if fitting and epoch % self.every_n_epochs != 0:
            return
        self._pending = self._evaluate_and_log(trainer, pl_module, epoch)
        if not fitting and trainer.ckpt_path:
            self._pending = self._checkpoint_point(trainer, self._pending)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != TrainerFn.FITTING:  # `validate --ckpt_path`: what its point is filed under
            self._loaded = Loaded(epochs=trained_epochs(checkpoint), global_step=checkpoint.get("global_step"))

    def _checkpoint_point(self, trainer: L.Trainer, point: EvaluatedPoint) -> EvaluatedPoint:
        """A checkpoint evaluated on its own (`train.py validate --ckpt_path X`): its point is named
        after the epochs X's weights were trained (`trained_epochs`; 0 when X does not say, as a
        weights-only checkpoint), and its metrics file names X (`ckpt_path`, `ckpt_global_step`), so
        that the report never takes it for the model before training. Its answers are drawn with
        the seeds of epoch `seed_epoch` (0), as every `validate` draws them (the frontier's α = 1)."""
        checkpoint = CheckpointPoint(
            ckpt_path=str(trainer.ckpt_path),
            ckpt_global_step=self._loaded.global_step,
            seed_epoch=trainer.current_epoch,
        )
        return replace(point, epoch=self._loaded.epochs or 0, checkpoint=checkpoint)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            self._publish(trainer, self._pending, self._others(trainer, self._pending))
            self._pending = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Without validation batches (no val set) the evaluation runs here instead, after each epoch."""
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs != 0 or any(h["epoch"] == epoch for h in self.history):
            return
        result = self._evaluate_and_log(trainer, pl_module, epoch)
        self._publish(trainer, result, self._others(trainer, result))

    def _evaluate_and_log(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> EvaluatedPoint:
        """Evaluate, then log the metrics by one route: every logger of the trainer (rank 0; every
        rank holds the same gathered figures) and `trainer.callback_metrics` (every rank), which
        ModelCheckpoint monitors and the metrics file read."""
        result = self.evaluate(trainer, pl_module, epoch)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(result.metrics, step=trainer.global_step)
        trainer.callback_metrics.update({tag: torch.tensor(value) for tag, value in result.metrics.items()})
        return result

    @staticmethod
    def _others(trainer: L.Trainer, result: EvaluatedPoint) -> dict[str, float]:
        """What else was logged at this point (val/loss, ...), for the metrics file."""
        return {k: float(v) for k, v in trainer.callback_metrics.items() if k not in result.metrics and v.numel() == 1}

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    # ---- the evaluation ------------------------------------------------------------------

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> EvaluatedPoint:
        """Answer every query under every condition (`interleave.eval.evaluate.evaluate`, each rank
        its share) in eval mode and the trainer's precision; a SIGTERM stops it between chunks."""
        inputs = eval_inputs(trainer.datamodule)  # the run's collation, feature cache and channel

        def progress(condition: str, share: int, total: int) -> Progress | _RichTask:
            desc = f"[interleave] SHARD epoch {epoch} {condition}" + (
                f" (rank 0's share of {total})" if trainer.world_size > 1 else ""
            )
            return query_progress(trainer, share, desc)

        try:
            with evaluating(trainer, pl_module):
                evaluated = Evaluated(rows=[], metrics={})
                if self.queries:
                    evaluated = evaluate(
                        pl_module,
                        self.queries,
                        self.settings,
                        inputs,
                        self.point_features(pl_module),
                        Point(epoch=epoch, rank=trainer.global_rank, world_size=trainer.world_size),
                        stop=lambda: self._stop(trainer),
                        progress=progress,
                    )
                bench_rows, bench_metrics = self._ask_benchmarks(trainer, pl_module, inputs, epoch)
                point = Point(epoch=epoch, rank=trainer.global_rank, world_size=trainer.world_size)
                run = RunSettings.of(self.settings)
                retention_metrics = self.retention.score(pl_module, point, run, inputs) if self.retention else {}
        except EvaluationStopped as stopped:
            rank_zero_info(f"[interleave] SHARD epoch {epoch}: SIGTERM, {stopped}")
            raise SIGTERMException() from None  # Lightning ends the fit; PreemptionCheckpoint saves
        evaluated = Evaluated(rows=evaluated.rows, metrics={**evaluated.metrics, **bench_metrics, **retention_metrics})
        return EvaluatedPoint(
            epoch=epoch,
            global_step=trainer.global_step,
            evaluated=evaluated,
            bench_rows=bench_rows,
            retention=self.retention.header() if self.retention else {},
        )

    def _ask_benchmarks(
        self, trainer: L.Trainer, pl_module: AudioLLM, inputs: EvalInputs, epoch: int
    ) -> tuple[list[Any], dict[str, float]]:
        """Every benchmark at this point (`callbacks.benchmarks`), with the run's sampling, repeats,
        chunk size and main layout; none asked: no rows, no figures."""
        if not self.benchmarks:
            return [], {}
        point = Point(epoch=epoch, rank=trainer.global_rank, world_size=trainer.world_size)
        return self.benchmarks.ask(
            pl_module,
            RunSettings.of(self.settings),
            inputs,
            self.point_features(pl_module),
            point,
            stop=lambda: self._stop(trainer),
        )

    def point_features(self, pl_module: AudioLLM) -> dict[str, torch.Tensor]:
        """The per-clip features dict for one evaluation point. A frozen encoder's features never
        change, so they are computed once and kept across points; a trained encoder's
        (`model.train_encoder`) change at every step, so the dict is emptied at each point (its
        conditions still share it: the encoder does not change within a point)."""
        if not pl_module.audio_encoder.frozen:
            self.features.clear()
        return self.features

    @staticmethod
    def _stop(trainer: L.Trainer) -> bool:
        """Whether any rank got SIGTERM: a long evaluation must not outlast a cluster's grace period."""
        if trainer.state.fn != TrainerFn.FITTING:
            return False
        return trainer.strategy.reduce_boolean_decision(trainer.received_sigterm, all=False)

    # ---- what the user sees --------------------------------------------------------------

    def _publish(self, trainer: L.Trainer, result: EvaluatedPoint, others: dict[str, float]) -> None:
        """Files, figure and text samples of one evaluated point (rank 0 only). The metrics file
        also records what makes runs comparable (`interleave.provenance`: code version, config and
        SHARD hashes, parser, tokenization rule)."""
        self.history = sorted(
            [h for h in self.history if h["epoch"] != result.epoch]
            + [CurvePoint(epoch=result.epoch, metrics=result.metrics)],
            key=lambda h: h["epoch"],
        )
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # a collective under DDP
        if not trainer.is_global_zero:
            return
        header = {
            **self._provenance(trainer, result.epoch, result.global_step),
            **(result.checkpoint.header() if result.checkpoint is not None else {}),
            **others,
        }
        if self.benchmarks:
            write_rows(run_dir / "predictions", result.epoch, result.bench_rows)
            header.update({**self.benchmarks.header(), BENCH_ROWS: len(result.bench_rows)})
        header.update(result.retention)
        stem = write_point(run_dir / "predictions", result.epoch, result.evaluated, header)
        summary = ", ".join(
            f"{tag.removeprefix('val/')}={value:.3f}"
            for tag, value in result.metrics.items()
            if (parsed := parse_tag(tag)) is not None and parsed.metric == TASKS[parsed.task].headline
        )
        if self.queries:
            print(f"[interleave] SHARD epoch {result.epoch}: {summary}  ({stem}.jsonl)")
        if self.benchmarks:
            print(
                f"[interleave] benchmarks epoch {result.epoch}: {bench_summary(result.metrics)}  ({stem}.bench.jsonl)"
            )
        if self.retention:
            print(f"[interleave] retention epoch {result.epoch}: {retention_summary(result.metrics)}")
        self._show(trainer, result, run_dir)

    def _provenance(self, trainer: L.Trainer, epoch: int, global_step: int) -> dict[str, Any]:
        """A metrics file's first keys: the point, the main layout, what makes runs comparable."""
        hparams = (trainer.lightning_module.hparams, trainer.datamodule.hparams)
        return {
            "epoch": epoch,
            "global_step": global_step,
            "layout": self.settings.conditions[0],
            **provenance(self.shard_file, self.settings.parser, *hparams, subset=self.shard_subset),
        }

    def _show(self, trainer: L.Trainer, result: EvaluatedPoint, run_dir: Path) -> None:
        """TensorBoard's layout and HParams (once), a few answers as text, and the curves for every logger."""
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                if not self._described:
                    describe_for_tensorboard(
                        logger,
                        run_hparams(trainer, trainer.lightning_module),
                        self.settings.prefixes,
                        {q.task for q in self.queries},
                        self.settings.probes,
                        {**self.benchmarks.charts(), **self.retention.charts()},
                        self.retention.lines(),
                    )
                logger.experiment.add_text(
                    "val/samples", samples_markdown(result.rows, self.text_samples), result.global_step
                )
        self._described = True
        self.curves = publish_curves(
            trainer,
            self.history,
            self.settings.prefixes,
            run_dir,
            result.global_step,
            self.settings.probes,
            {**self.benchmarks.charts(), **self.retention.charts()},
            self.retention.lines(),
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The benchmarks' whole files (`whole_at_end`, `callbacks.benchmarks.Benchmarks.at_fit_end`),
        then the curves from epoch 0 to the last, and where the predictions and the figure are."""
        if self.benchmarks.asks_whole:
            with evaluating(trainer, pl_module):
                self.benchmarks.at_fit_end(
                    trainer,
                    pl_module,
                    RunSettings.of(self.settings),
                    eval_inputs(trainer.datamodule),
                    self.point_features(pl_module),
                    self._provenance(trainer, trainer.current_epoch, trainer.global_step),
                    stop=lambda: self._stop(trainer),
                )
        if trainer.is_global_zero and self.history and self.curves is not None:
            print(
                f"[interleave] SHARD and identity, epoch 0 to {self.history[-1]['epoch']}:\n"
                f"{closing_table(self.history, self.settings.prefixes, self.retention.lines())}\n"
                f"[interleave] predictions: {self.curves.parent / 'predictions'}  curves: {self.curves}"
            )
