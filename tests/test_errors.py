"""interleave.errors: the error types, and report_errors, the one place a command's expected error becomes
one `error:` line and exit status 2, and an interrupt one `interrupted:` line and exit status 130."""

import sys

import pytest
from omegaconf import OmegaConf

from interleave.errors import AudioError, InterleaveError, RecordError, command_name, report_errors, running


def test_the_error_types_name_the_input_at_fault():
    audio = AudioError("clips/a.wav", "cannot decode audio")
    record = RecordError("train.jsonl:3 (id=x)", "2 [AUDIO] placeholders")
    assert str(audio) == "clips/a.wav: cannot decode audio" and (audio.path, audio.reason) == (
        "clips/a.wav",
        "cannot decode audio",
    )
    assert str(record) == "train.jsonl:3 (id=x): 2 [AUDIO] placeholders" and record.where == "train.jsonl:3 (id=x)"
    assert isinstance(audio, InterleaveError) and isinstance(record, InterleaveError)


def test_an_interleave_error_is_one_error_line_and_exit_2(capsys):
    def body():
        raise RecordError("train.jsonl:3", "2 [AUDIO] placeholders")

    assert report_errors(body) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: train.jsonl:3: 2 [AUDIO] placeholders\n" and captured.out == ""


def test_the_body_gives_the_exit_status():
    assert report_errors(lambda: 1) == 1
    assert report_errors(lambda: 0) == 0
    assert report_errors(lambda: None) == 0  # a body with no status succeeded
    assert report_errors(lambda: {"records": 3}) == 0


def test_a_bug_is_not_hidden_behind_an_error_line():
    with pytest.raises(ZeroDivisionError):
        report_errors(lambda: 1 / 0)


@pytest.mark.parametrize(
    "config", [{"paths": {"llm": "???"}}, {"fit": {"paths": {"llm": "???"}}}], ids=["top-level", "under-a-subcommand"]
)
def test_a_value_left_as_missing_names_the_flag_that_sets_it(config, capsys):
    config = OmegaConf.create(config)
    read = (lambda: config.fit.paths.llm) if "fit" in config else (lambda: config.paths.llm)
    assert report_errors(read) == 2
    assert (
        capsys.readouterr().err
        == "error: the config leaves paths.llm to set (???): pass --paths.llm=... or edit the config\n"
    )


def test_an_interpolation_that_names_nothing_is_one_line_with_a_hint_for_data_blocks(capsys):
    config = OmegaConf.create(
        {"model": {"llm": "${paths.llm}"}, "data": {"init_args": {"train_file": "${paths.data}"}}}
    )
    assert report_errors(lambda: config.model.llm) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "paths.llm" in err and "(at model.llm)" in err and err.count("\n") == 1
    assert "class_path" not in err
    assert report_errors(lambda: config.data.init_args.train_file) == 2
    err = capsys.readouterr().err
    assert "(at data.init_args.train_file)" in err
    assert "needs `class_path: interleave.data.InterleavedDataModule`" in err


def test_redact_cleans_the_message_before_it_is_printed(capsys):
    def body():
        raise InterleaveError("HTTP 401: invalid key, headers were: Authorization: Bearer sk-SECRET-123")

    assert report_errors(body, redact=lambda message: message.replace("sk-SECRET-123", "***")) == 2
    err = capsys.readouterr().err
    assert err == "error: HTTP 401: invalid key, headers were: Authorization: Bearer ***\n"


def test_an_interleave_error_that_jsonargparse_wraps_is_unwrapped_to_its_one_line(capsys):
    """Issue 34: jsonargparse raises `ValueError("Does not validate against any of the Union subtypes
    ...")` from the data module's own error; the line is the project's, exit status 2."""

    def body():
        try:
            raise InterleaveError("data.train_files[0].weight: expected a finite number > 0, got -0.5")
        except InterleaveError as err:
            raise ValueError("Does not validate against any of the Union subtypes\nSubtypes: [...]") from err

    assert report_errors(body) == 2
    assert capsys.readouterr().err == "error: data.train_files[0].weight: expected a finite number > 0, got -0.5\n"


def test_a_bug_raised_while_handling_an_interleave_error_stays_a_bug():
    def implicit():
        try:
            raise InterleaveError("a bad file")
        except InterleaveError:
            raise TypeError("a bug in the handler")  # noqa: B904  (chained by context only: not a wrapper)

    with pytest.raises(TypeError, match="a bug in the handler"):
        report_errors(implicit)

    def through_another_kind():
        raise RuntimeError("a library failed") from InterleaveError("a bad file")

    with pytest.raises(RuntimeError):
        report_errors(through_another_kind)


def test_an_interrupt_is_one_line_saying_what_was_kept_and_exit_130(capsys):
    done = []

    def body():
        done.append("alpha=0")
        raise KeyboardInterrupt

    kept = lambda: f"the answers of {', '.join(done)} are kept"  # noqa: E731  (asked when interrupted)
    assert report_errors(body, what="interleave frontier", kept=kept) == 130
    assert capsys.readouterr().err == "interrupted: interleave frontier; the answers of alpha=0 are kept\n"

    def broken_note():
        raise OSError("gone")

    assert report_errors(body, what="x", kept=broken_note) == 130
    assert capsys.readouterr().err == "interrupted: x; (what was kept is unknown: OSError: gone)\n"


def test_lightnings_exit_after_ctrl_c_is_an_interrupt_and_other_exits_pass(capsys):
    def lightning_fit():  # what Lightning's _call_and_handle_interrupt does with Ctrl-C
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemExit(1)  # noqa: B904  (what Lightning does on Ctrl-C)

    assert report_errors(lightning_fit, what="python train.py fit", kept="no checkpoint had been saved yet") == 130
    assert capsys.readouterr().err == "interrupted: python train.py fit; no checkpoint had been saved yet\n"
    with pytest.raises(SystemExit):
        report_errors(lambda: sys.exit(2))


def test_the_running_command_names_the_interrupt_and_its_default_note(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])
    assert command_name() == "train.py"
    with running("interleave rephrase", "every record rewritten so far is kept"):
        assert command_name() == "interleave rephrase"
        assert report_errors(lambda: (_ for _ in ()).throw(KeyboardInterrupt)) == 130
        assert (
            report_errors(lambda: (_ for _ in ()).throw(KeyboardInterrupt), what="interleave rephrase summary") == 130
        )
        assert command_name() == "interleave rephrase"
    assert command_name() == "train.py"
    assert capsys.readouterr().err == (
        "interrupted: interleave rephrase; every record rewritten so far is kept\n"
        "interrupted: interleave rephrase summary; every record rewritten so far is kept\n"
    )
    assert report_errors(lambda: (_ for _ in ()).throw(KeyboardInterrupt)) == 130
    assert capsys.readouterr().err == "interrupted: train.py; what it wrote before is kept as it was\n"
