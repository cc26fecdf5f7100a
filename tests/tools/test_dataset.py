"""interleave.tools.dataset: `interleave data check FILE` lists every bad record with file:line and reason."""

from interleave.tools.dataset import main as data_main
from tests.conftest import write_clip, write_jsonl
from tests.test_data import BAD_KINDS, bad_file
from tests.test_records import good


def test_checker_reports_every_bad_kind_with_file_and_line(tmp_path, capsys, tokenizer_dir):
    path = bad_file(tmp_path)
    code = data_main(["check", str(path), "--decode", "--tokenizer", str(tokenizer_dir), "--max-length", "128"])
    out = capsys.readouterr().out
    assert code == 1
    for line, reason in BAD_KINDS.items():
        assert any(l.startswith(f"{path}:{line}") and reason in l for l in out.splitlines()), (line, reason, out)
    assert f"{path}: 9 record(s), 1 good, 8 bad" in out


def test_checker_passes_a_clean_file_and_without_decode_misses_only_decoding(tmp_path, capsys, tokenizer_dir):
    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(tmp_path / "ok.jsonl", [good(0)])
    assert data_main(["check", str(path), "--tokenizer", str(tokenizer_dir)]) == 0
    assert "1 record(s), 1 good, 0 bad" in capsys.readouterr().out
    bad = bad_file(tmp_path / "b")
    data_main(["check", str(bad), "--tokenizer", "none"])
    out = capsys.readouterr().out
    assert "unreadable audio" not in out and "lengths not checked" in out and "6 bad" in out  # neither decoding nor length checked


def test_checker_counts_records_whose_placeholder_splits_a_token(tmp_path, capsys, tokenizer_dir):
    write_clip(tmp_path / "audio" / "g0.wav")
    write_clip(tmp_path / "audio" / "g1.wav")
    path = write_jsonl(tmp_path / "ok.jsonl", [good(0), good(1, "Is it a type of vehi[AUDIO]cle?")])
    assert data_main(["check", str(path), "--tokenizer", str(tokenizer_dir)]) == 0  # a note, not a problem
    out = capsys.readouterr().out
    assert "2 record(s), 2 good, 0 bad" in out
    assert f"note: 1 good record(s) have a text token split where [AUDIO] stands" in out and f"{path}:2 (id=g1)" in out


def test_checker_missing_file_is_a_clear_error(tmp_path, capsys):
    assert data_main(["check", str(tmp_path / "nope.jsonl"), "--tokenizer", "none"]) == 1
    assert "cannot read file" in capsys.readouterr().out


def test_checker_refuses_an_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert data_main(["check", str(path), "--tokenizer", "none"]) == 1
    assert f"{path}: the file holds no records" in capsys.readouterr().out


def test_checker_measures_spans_of_audio_tokens_positions(tmp_path, capsys, tokenizer_dir):
    from interleave.collate import Collator
    from interleave.data import load_checked
    from interleave.llm import load_tokenizer

    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(tmp_path / "ok.jsonl", [good(0)])
    collator = Collator(load_tokenizer(str(tokenizer_dir)), max_length=4096)
    (record,), _ = load_checked(path, tmp_path, collator, None, [])
    prompt = len(collator.encode(record, with_answer=False).input_ids)  # with LTU's 32 positions
    args = ["check", str(path), "--tokenizer", str(tokenizer_dir), "--max-length", str(prompt - 1)]
    assert data_main(args) == 1 and "1 bad" in capsys.readouterr().out
    assert data_main([*args, "--audio-tokens", "8"]) == 0  # another encoder's 8 positions fit
