"""interleave.shard.cli: `interleave shard build|lexicon|wordnet` and `python -m interleave.shard`;
errors exit 2 with one line and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from interleave.eval.format import read_shard
from interleave.shard.cli import main
from tests.helpers import LABELS_CSV, copy_wordnet

REPO = Path(__file__).resolve().parents[2]


def test_cli_build_and_wordnet(corpus: Path, wordnet_dir: Path, capsys) -> None:
    code = main(["build", "--labels", str(LABELS_CSV), "--clips", str(corpus / "clips.jsonl"), "--out", str(corpus / "s.jsonl"),
                 "--wordnet", str(wordnet_dir), "--seed", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and "[interleave] SHARD: 5 words (522 skipped), 180 queries" in err
    assert "skipped 'Chirp tone': no WordNet noun" in err
    assert len(read_shard(corpus / "s.jsonl")) == 180
    debian = copy_wordnet(corpus / "debian", lexnames=False)
    assert main(["wordnet", "--from", str(debian), "--out", str(corpus / "nltk")]) == 0
    assert (corpus / "nltk" / "corpora" / "wordnet" / "lexnames").is_file()


def test_cli_build_wordnet_without_folder_reads_nltk_data(corpus: Path, wordnet_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NLTK_DATA", str(wordnet_dir))
    assert main(["build", "--labels", str(LABELS_CSV), "--clips", str(corpus / "clips.jsonl"), "--out", str(corpus / "s.jsonl"),
                 "--wordnet"]) == 0  # fmt: skip
    report = json.loads((corpus / "s.report.json").read_text())
    assert report["parameters"]["wordnet"] == str(wordnet_dir / "corpora" / "wordnet")


def test_cli_lexicon_over_every_label(tmp_path: Path, wordnet_dir: Path, capsys) -> None:
    stop = tmp_path / "stop.txt"
    stop.write_text("canine\n")
    out = tmp_path / "lexicon.json"
    assert (
        main(
            [
                "lexicon",
                "--labels",
                str(LABELS_CSV),
                "--wordnet",
                str(wordnet_dir),
                "--out",
                str(out),
                "--stoplist",
                str(stop),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    data = json.loads(out.read_text())
    counts = data["counts"]
    assert counts["words"] + counts["skipped"] == 527 and data["stoplist"] == ["canine"]
    groups = ", ".join(f"{n} {g}" for g, n in counts["per_group"].items())
    assert f"[interleave] lexicon: {counts['words']} of 527 labels qualify ({groups}) -> {out}" in err
    for kind, n in counts["skipped_per_reason"].items():
        assert f"  {n} skipped: {kind}\n" in err
    assert "skipped 'Rock and roll': same sense rock_'n'_roll.n.01 as 'Rock music', which keeps it" in err
    dog = next(e for e in data["entries"] if e["label"] == "Dog")
    assert (
        dog["synset"] == "dog.n.01"
        and dog["lexname"] == "noun.animal"
        and dog["gloss"].startswith("a member of the genus")
    )
    assert dog["hypernyms"] == ["canid", "domestic animal"] and "hypernym 'canine': stoplisted" in dog["rejected"]


@pytest.mark.parametrize("problem", ["missing_labels", "missing_clips", "no_lexnames", "both_sources"])
def test_cli_errors_exit_2_without_traceback(corpus: Path, wordnet_dir: Path, capsys, problem: str) -> None:
    labels, clips, wordnet = str(LABELS_CSV), str(corpus / "clips.jsonl"), ["--wordnet", str(wordnet_dir)]
    expected = {"missing_labels": "cannot read labels CSV", "missing_clips": "cannot read clip index",
                "no_lexnames": "lacks lexnames", "both_sources": "give either --lexicon or --wordnet"}[problem]  # fmt: skip
    if problem == "missing_labels":
        labels = str(corpus / "nope.csv")
    elif problem == "missing_clips":
        clips = str(corpus / "nope.jsonl")
    elif problem == "no_lexnames":
        wordnet = ["--wordnet", str(copy_wordnet(corpus / "debian", lexnames=False))]
    else:
        wordnet += ["--lexicon", str(corpus / "lexicon.json")]
    code = main(["build", "--labels", labels, "--clips", clips, "--out", str(corpus / "s.jsonl"), *wordnet])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and expected in err and "Traceback" not in err
    assert not (corpus / "s.jsonl").exists()


@pytest.mark.slow
def test_module_runs_as_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "interleave.shard", "wordnet", "--from", str(tmp_path / "none"), "--out", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr == f"error: WordNet folder not found: {tmp_path / 'none'}\n"
