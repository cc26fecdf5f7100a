"""callbacks.points: an evaluated point's epochs and files."""

import json

from callbacks.points import trained_epochs, write_point
from interleave.eval.evaluate import Evaluated
from interleave.eval.predictions import ROW_COUNT


def test_trained_epochs_of_a_checkpoint_as_a_fit_numbers_its_points():
    """The states Lightning saves (2 batches an epoch): mid-epoch, after an epoch's last batch (by
    step, or after its validation), and after the fit."""

    def saved(epoch, started, completed, last_batch):
        return {
            "epoch": epoch,
            "loops": {
                "fit_loop": {
                    "epoch_progress": {"current": {"started": started, "completed": completed}},
                    "epoch_loop.batch_progress": {"is_last_batch": last_batch},
                }
            },
        }

    assert trained_epochs(saved(0, 1, 0, False)) == 0  # step 1
    assert trained_epochs(saved(0, 1, 0, True)) == 1  # step 2, the first epoch's last (or at its end)
    assert trained_epochs(saved(1, 2, 1, False)) == 1  # step 3
    assert trained_epochs(saved(1, 2, 1, True)) == 2  # step 4
    assert trained_epochs(saved(2, 2, 2, True)) == 2  # saved after the fit ended
    assert trained_epochs({"epoch": 3}) == 3 and trained_epochs({"state_dict": {}}) is None


def test_a_points_metrics_file_states_its_row_count_after_its_header(tmp_path):
    evaluated = Evaluated(rows=[], metrics={"val/shard/synonym/f1": 0.5, "val/identity/accuracy": 0.25})
    stem = write_point(tmp_path / "predictions", 3, evaluated, {"epoch": 3, "layout": "interleaved"})
    assert stem == tmp_path / "predictions" / "epoch=03"
    assert (tmp_path / "predictions" / "epoch=03.jsonl").read_text() == ""
    metrics = json.loads((tmp_path / "predictions" / "epoch=03.metrics.json").read_text())
    assert metrics == {
        "epoch": 3,
        "layout": "interleaved",
        ROW_COUNT: 0,
        "val/identity/accuracy": 0.25,
        "val/shard/synonym/f1": 0.5,
    }
