"""SHARD and identity evaluation during training: the forgetting curves, as they happen."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from callbacks.curves import closing_table, describe_for_tensorboard, publish_curves, run_hparams, samples_markdown
from interleave.data.module import InterleavedDataModule
from interleave.errors import InterleaveError
from interleave.eval.evaluate import EvalInputs, EvalSettings, EvaluationStopped, Point, evaluate
from interleave.eval.format import read_shard
from interleave.eval.predictions import CKPT_PATH, ROW_COUNT
from interleave.eval.query import Query
from interleave.eval.tasks import TASKS, parse_tag
from interleave.files import write_text_atomic
from interleave.model.generation import Sampling
from interleave.model.module import AudioLLM
from interleave.progress import Progress
from interleave.provenance import provenance

Layout = str  # a condition of the registry (interleave.eval.tasks.CONDITIONS): interleaved, noninterleaved, ...


class _RichTask:
    """Queries answered, as one more task of the trainer's rich progress bar (removed when done)."""

    def __init__(self, progress: Any, total: int, desc: str) -> None:
        self.progress, self.task = progress, progress.add_task(desc.removeprefix("[interleave] "), total=total)

    def __enter__(self) -> _RichTask:
        return self

    def __exit__(self, *_: Any) -> None:
        self.progress.remove_task(self.task)

    def __call__(self, n: int) -> None:
        self.progress.update(self.task, advance=n)


def query_progress(trainer: L.Trainer, total: int, desc: str) -> Progress | _RichTask:
    """Where rank 0 counts the queries it answers, as the trainer shows its own progress: a task of
    its rich bar; a tqdm bar below its tqdm bars (same stream, cleared when done); without a bar or
    off a terminal (a batch log), a `rank_zero_info` line every 10 s and a last one. Other ranks: nothing."""
    bar = trainer.progress_bar_callback
    enabled = bar is not None and bar.is_enabled
    if (
        trainer.is_global_zero
        and enabled
        and isinstance(bar, RichProgressBar)
        and bar.progress is not None
        and bar.progress.live.is_started
    ):
        return _RichTask(bar.progress, total, desc)
    stream = sys.stdout if isinstance(bar, TQDMProgressBar) else sys.stderr
    return Progress(
        total,
        "queries",
        desc,
        file=stream,
        tty=None if enabled else False,
        write=rank_zero_info,
        enabled=trainer.is_global_zero,
        leave=False,
    )


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
    text-only control (the word replaces the audio) under `val/text/shard/...`. With `scoring`,
    each yes/no query is also scored deterministically (P(yes) vs P(no) of the first answer token,
    one forward pass) and logged beside the sampled metrics as `.../scored_{accuracy,f1}`.
    `parser` picks `interleave.eval.answers.parse_answer`'s rules for the yes/no answers: "paper" (the
    paper's phrases, the default) or "extended" (wider). `sampling` is how answers are generated
    (`interleave.model.generation.Sampling`: LTU's settings with a 32-token cap by default). By default
    a yes/no answer stops as soon as its parsed verdict can no longer change
    (`interleave.eval.answers.settled_answer`: a leading "Yes," or "No ", or a negative phrase after
    another first word), which gives the very verdicts, and metrics, of whole answers under the
    same seeds at a fraction of the cost; such answers are marked `cut` in the predictions file.
    `full_answers=True` generates every answer to EOS or the cap, for users who read the
    explanations or re-score with another parser. Identity answers always run to the end. Prompts are
    collated as the run's data module collates (its template, `max_length` and audio channel).
    Files, in the run folder: `predictions/epoch=NN.jsonl` (every answer, raw and parsed, so that
    `interleave report --parser` can re-score them; it refuses another parser for cut answers) and `predictions/epoch=NN.metrics.json`
    (every logged metric, flat, with the `layout`, the `parser` used and how many rows the
    predictions file holds, `prediction_rows`), and `curves.png` /
    `curves.csv` (the forgetting curves so far), logged as an image through every logger that
    takes one. TensorBoard also gets a few answers as text, a Custom Scalars layout "forgetting"
    and the run's settings in HParams (`callbacks.curves`); the end of a fit prints the curves as
    a table. `NN` counts the training epochs done: under `validate`, 0 for the config's model (before
    training); for `validate --ckpt_path X`, the epochs X's weights were trained, and the metrics
    file names X (`ckpt_path`): a checkpoint evaluated on its own is never filed as before training.

    `probes` (issue 26; none by default) are conditions asked like the text control, on the same
    queries, repeats and seeds, that also log their `agreement` with `layout`'s answers under
    `val/<probe>/...`: the clip probes `silence`, `noise` and `swap`, the placements
    `question_start` and `question_end` (with `noninterleaved` and `layout` itself, the placement sweep),
    or any registered condition. They are charted as "does it listen" in TensorBoard and `curves.png`.

    `max_queries_per_task` (None: every query, the default) asks at most that many queries of each
    task, a fixed subset chosen by word and clip (`interleave.eval.evaluate.capped_queries`, seeded
    by `seed`): the same queries at every evaluated point and on every rank, for a quick check. The
    metrics file then records it as `shard_subset`, and `interleave report` refuses to put the run
    beside one evaluated on another subset or on every query (`interleave.provenance`).
    """

    def __init__(
        self,
        shard_file: str,
        layout: Layout = "interleaved",
        extra_layouts: list[Layout] | None = None,
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
    ) -> None:
        if every_n_epochs < 1:
            raise InterleaveError("ShardEvaluation: every_n_epochs must be at least 1")
        conditions = [layout, *(extra for extra in extra_layouts or [] if extra != layout)] + (
            ["text"] if text_control else []
        )
        try:
            self.settings = EvalSettings(
                sampling,
                repeats,
                parser,
                tuple(dict.fromkeys([*conditions, *(probes or [])])),
                batch_size,
                seed,
                prompts,
                full_answers,
                scoring,
                tuple(dict.fromkeys(probes or [])),
                max_queries_per_task,
            )
        except InterleaveError as err:
            raise InterleaveError(f"ShardEvaluation: {err}") from None
        self.shard_file = shard_file
        self.identity = identity
        self.every_n_epochs = every_n_epochs
        self.before_training = before_training
        self.text_samples = text_samples
        self.queries: list[Query] = []
        self.shard_subset: str | None = None  # the metrics file's `shard_subset` when the queries are capped
        self.features: dict[str, torch.Tensor] = {}  # encoder features per clip (see point_features)
        self.history: list[dict[str, Any]] = []  # one entry per evaluated point, for the curves
        self._pending: dict[str, Any] | None = None
        self._described = False  # TensorBoard's layout and HParams are written once per run
        self.curves: Path | None = None  # curves.png, once a point is published
        self._loaded: dict[str, Any] = {}  # outside a fit: the checkpoint evaluated on its own (on_load_checkpoint)

    # ---- Lightning hooks -----------------------------------------------------------------

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.queries:
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
            self._pending.update(self._checkpoint_point(trainer))

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != TrainerFn.FITTING:  # `validate --ckpt_path`: what its point is filed under
            self._loaded = {"epochs": trained_epochs(checkpoint), "global_step": checkpoint.get("global_step")}

    def _checkpoint_point(self, trainer: L.Trainer) -> dict[str, Any]:
        """A checkpoint evaluated on its own (`train.py validate --ckpt_path X`): its point is named
        after the epochs X's weights were trained (`trained_epochs`; 0 when X does not say, as a
        weights-only checkpoint), and its metrics file names X (`ckpt_path`, `ckpt_global_step`), so
        that the report never takes it for the model before training. Its answers are drawn with
        the seeds of epoch `seed_epoch` (0), as every `validate` draws them (the frontier's α = 1)."""
        return {
            "epoch": self._loaded.get("epochs") or 0,
            "checkpoint": {
                CKPT_PATH: str(trainer.ckpt_path),
                "ckpt_global_step": self._loaded.get("global_step"),
                "seed_epoch": trainer.current_epoch,
            },
        }

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

    def _evaluate_and_log(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> dict[str, Any]:
        """Evaluate, then log the metrics by one route: every logger of the trainer (rank 0; every
        rank holds the same gathered figures) and `trainer.callback_metrics` (every rank), which
        ModelCheckpoint monitors and the metrics file read."""
        result = self.evaluate(trainer, pl_module, epoch)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(result["metrics"], step=trainer.global_step)
        trainer.callback_metrics.update({tag: torch.tensor(value) for tag, value in result["metrics"].items()})
        return result

    @staticmethod
    def _others(trainer: L.Trainer, result: dict[str, Any]) -> dict[str, float]:
        """What else was logged at this point (val/loss, ...), for the metrics file."""
        return {
            k: float(v) for k, v in trainer.callback_metrics.items() if k not in result["metrics"] and v.numel() == 1
        }

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    # ---- the evaluation ------------------------------------------------------------------

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> dict[str, Any]:
        """Answer every query under every condition (`interleave.eval.evaluate.evaluate`, each rank
        its share) in eval mode and the trainer's precision; a SIGTERM stops it between chunks."""
        inputs = eval_inputs(trainer.datamodule)  # the run's collation, feature cache and channel

        def progress(condition: str, share: int, total: int) -> Progress | _RichTask:
            desc = f"[interleave] SHARD epoch {epoch} {condition}" + (
                f" (rank 0's share of {total})" if trainer.world_size > 1 else ""
            )
            return query_progress(trainer, share, desc)

        modes = {module: module.training for module in pl_module.modules()}
        pl_module.eval()
        try:
            with torch.no_grad(), trainer.precision_plugin.val_step_context():
                rows, metrics = evaluate(
                    pl_module,
                    self.queries,
                    self.settings,
                    inputs,
                    self.point_features(pl_module),
                    Point(epoch, trainer.global_rank, trainer.world_size),
                    stop=lambda: self._stop(trainer),
                    progress=progress,
                )
        except EvaluationStopped as stopped:
            rank_zero_info(f"[interleave] SHARD epoch {epoch}: SIGTERM, {stopped}")
            raise SIGTERMException() from None  # Lightning ends the fit; PreemptionCheckpoint saves
        finally:
            for module, training in modes.items():
                module.train(training)
        return {"epoch": epoch, "global_step": trainer.global_step, "metrics": metrics, "rows": rows}

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

    def _publish(self, trainer: L.Trainer, result: dict[str, Any], others: dict[str, float]) -> None:
        """Files, figure and text samples of one evaluated point (rank 0 only). The metrics file
        also records what makes runs comparable (`interleave.provenance`: code version, config and
        SHARD hashes, parser, tokenization rule)."""
        self.history = sorted(
            [h for h in self.history if h["epoch"] != result["epoch"]]
            + [{"epoch": result["epoch"], "metrics": result["metrics"]}],
            key=lambda h: h["epoch"],
        )
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # a collective under DDP
        if not trainer.is_global_zero:
            return
        header = {
            "epoch": result["epoch"],
            "global_step": result["global_step"],
            "layout": self.settings.conditions[0],
            **provenance(
                self.shard_file,
                self.settings.parser,
                trainer.lightning_module.hparams,
                trainer.datamodule.hparams,
                subset=self.shard_subset,
            ),
            **result.get("checkpoint", {}),
            **others,
        }
        stem = write_point(run_dir / "predictions", result, header)
        summary = ", ".join(
            f"{tag.removeprefix('val/')}={value:.3f}"
            for tag, value in result["metrics"].items()
            if (parsed := parse_tag(tag)) is not None and parsed.metric == TASKS[parsed.task].headline
        )
        print(f"[interleave] SHARD epoch {result['epoch']}: {summary}  ({stem}.jsonl)")
        self._show(trainer, result, run_dir)

    def _show(self, trainer: L.Trainer, result: dict[str, Any], run_dir: Path) -> None:
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
                    )
                logger.experiment.add_text(
                    "val/samples", samples_markdown(result["rows"], self.text_samples), result["global_step"]
                )
        self._described = True
        self.curves = publish_curves(
            trainer, self.history, self.settings.prefixes, run_dir, result["global_step"], self.settings.probes
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The curves from epoch 0 to the last, and where the predictions and the figure are."""
        if trainer.is_global_zero and self.history and self.curves is not None:
            print(
                f"[interleave] SHARD and identity, epoch 0 to {self.history[-1]['epoch']}:\n"
                f"{closing_table(self.history, self.settings.prefixes)}\n"
                f"[interleave] predictions: {self.curves.parent / 'predictions'}  curves: {self.curves}"
            )


def trained_epochs(checkpoint: dict[str, Any]) -> int | None:
    """The training epochs a Lightning checkpoint's weights completed, as a fit numbers its points:
    Lightning's `epoch` (the epochs completed when it was saved), plus the epoch under way when it
    was saved after that epoch's last batch (ModelCheckpoint at an epoch's end); None when it does
    not say."""
    epoch = checkpoint.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        return None
    fit = (checkpoint.get("loops") or {}).get("fit_loop") or {}
    progress = (fit.get("epoch_progress") or {}).get("current") or {}
    under_way = progress.get("started", 0) > progress.get("completed", epoch)
    return epoch + 1 if under_way and (fit.get("epoch_loop.batch_progress") or {}).get("is_last_batch") else epoch


def write_point(folder: Path, result: dict[str, Any], header: dict[str, Any]) -> Path:
    """One evaluated point's files: `epoch=NN.jsonl` (every prediction row) and `epoch=NN.metrics.json`
    (`header`, how many rows the predictions file holds (`ROW_COUNT`), then every metric, flat and
    sorted); returns their common stem."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"epoch={result['epoch']:02d}"
    write_text_atomic(Path(f"{stem}.jsonl"), "".join(row.to_json() + "\n" for row in result["rows"]))
    write_text_atomic(
        Path(f"{stem}.metrics.json"),
        json.dumps({**header, ROW_COUNT: len(result["rows"]), **result["metrics"]}, indent=2, sort_keys=True) + "\n",
    )
    return stem
