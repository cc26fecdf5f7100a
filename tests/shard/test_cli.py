"""interleave.shard.cli: `interleave shard build|wordnet` and `python -m interleave.shard`; errors exit 2
with one line and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from interleave.shard.cli import main
from interleave.shard.format import read_shard
from tests.shard.conftest import LABELS_CSV
from tests.wordnet_fixture import write_wordnet

REPO = Path(__file__).resolve().parents[2]


def test_cli_build_and_wordnet(corpus: Path, wordnet_dir: Path, capsys) -> None:
    code = main(["build", "--labels", str(LABELS_CSV), "--clips", str(corpus / "clips.jsonl"), "--out", str(corpus / "s.jsonl"),
                 "--wordnet", str(wordnet_dir), "--seed", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and "[interleave] SHARD: 5 words (3 skipped), 180 queries" in err
    assert "skipped 'Chirp tone': no WordNet noun" in err
    assert len(read_shard(corpus / "s.jsonl")) == 180
    debian = write_wordnet(corpus / "debian", lexnames=False)
    assert main(["wordnet", "--from", str(debian), "--out", str(corpus / "nltk")]) == 0
    assert (corpus / "nltk" / "corpora" / "wordnet" / "lexnames").is_file()


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
        wordnet = ["--wordnet", str(write_wordnet(corpus / "debian", lexnames=False))]
    else:
        wordnet += ["--lexicon", str(corpus / "lexicon.json")]
    code = main(["build", "--labels", labels, "--clips", clips, "--out", str(corpus / "s.jsonl"), *wordnet])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and expected in err and "Traceback" not in err
    assert not (corpus / "s.jsonl").exists()


def test_module_runs_as_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "interleave.shard", "wordnet", "--from", str(tmp_path / "none"), "--out", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr == f"error: WordNet folder not found: {tmp_path / 'none'}\n"
