"""interleave.errors: the error types, and report_errors, the one place a command's expected error becomes
one `error:` line and exit status 2."""

import pytest
from omegaconf import OmegaConf

from interleave.errors import AudioError, InterleaveError, RecordError, report_errors


def test_the_error_types_name_the_input_at_fault():
    audio = AudioError("clips/a.wav", "cannot decode audio")
    record = RecordError("train.jsonl:3 (id=x)", "2 [AUDIO] placeholders")
    assert str(audio) == "clips/a.wav: cannot decode audio" and (audio.path, audio.reason) == ("clips/a.wav", "cannot decode audio")
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


@pytest.mark.parametrize("config", [{"paths": {"llm": "???"}}, {"fit": {"paths": {"llm": "???"}}}],
                         ids=["top-level", "under-a-subcommand"])
def test_a_value_left_as_missing_names_the_flag_that_sets_it(config, capsys):
    config = OmegaConf.create(config)
    read = (lambda: config.fit.paths.llm) if "fit" in config else (lambda: config.paths.llm)
    assert report_errors(read) == 2
    assert capsys.readouterr().err == "error: the config leaves paths.llm to set (???): pass --paths.llm=... or edit the config\n"


def test_an_interpolation_that_names_nothing_is_one_line_with_a_hint_for_data_blocks(capsys):
    config = OmegaConf.create({"model": {"llm": "${paths.llm}"}, "data": {"init_args": {"train_file": "${paths.data}"}}})
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
