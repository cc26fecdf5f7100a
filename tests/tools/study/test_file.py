"""interleave.tools.study.file: a study file read into its dataclasses; every fault names the file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from interleave.tools.study.file import StudyError, load_study

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def base(tmp_path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text("seed_everything: 0\n")
    return path


def write(tmp_path: Path, study: dict) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_a_study_file_becomes_conditions_seeds_and_an_executor(tmp_path, base):
    study = load_study(
        write(
            tmp_path,
            {
                "config": str(base),
                "overrides": ["--trainer.max_epochs=1"],
                "seeds": [0, 1],
                "conditions": {
                    "plain": None,
                    "tuned": {
                        "command": "validate",
                        "config": [str(base)],
                        "overrides": {"model.lora_r": 4, "paths.llm": "/m", "x.y": [1, 2]},
                    },
                },
                "executor": {"kind": "local", "gpus": 4, "gpus_per_run": 2},
            },
        )
    )
    assert study.name == "s" and study.output == Path("runs/s") and study.seeds == [0, 1]
    assert [c.name for c in study.conditions] == ["plain", "tuned"]
    plain, tuned = study.conditions
    assert (plain.subcommand, plain.configs, plain.overrides) == ("fit", [], [])
    assert tuned.subcommand == "validate" and tuned.configs == [str(base)]
    assert tuned.overrides == ["--model.lora_r=4", "--paths.llm=/m", "--x.y=[1, 2]"]
    assert study.overrides == ["--trainer.max_epochs=1"]
    assert (study.executor.kind, study.executor.parallel, study.executor.gpus_per_run) == ("local", 2, 2)
    assert study.executor.train_overrides() == []


def test_a_slurm_executor_gives_submitit_its_resources_and_the_trainer_its_nodes(tmp_path, base):
    study = load_study(
        write(
            tmp_path,
            {
                "name": "big",
                "config": str(base),
                "seeds": [3],
                "conditions": {"a": {}},
                "output": "elsewhere/big",
                "executor": {
                    "kind": "slurm",
                    "nodes": 2,
                    "gpus_per_node": 4,
                    "time": "1-02:30:00",
                    "partition": "gpu",
                    "mem_gb": 200,
                    "slurm": {"account": "lab", "qos": "high"},
                },
            },
        )
    )
    assert study.output == Path("elsewhere/big")
    assert study.executor.submitit_parameters("big") == {
        "name": "big",
        "nodes": 2,
        "tasks_per_node": 4,
        "gpus_per_node": 4,
        "timeout_min": 24 * 60 + 150,
        "mem_gb": 200,
        "slurm_partition": "gpu",
        "slurm_additional_parameters": {"account": "lab", "qos": "high"},
    }
    assert study.executor.train_overrides() == ["--trainer.num_nodes=2", "--trainer.devices=4"]
    assert study.executor.cluster == "slurm"


def test_the_shipped_paper_study_is_the_four_rows_times_three_seeds_on_slurm(monkeypatch):
    monkeypatch.chdir(REPO)
    study = load_study(Path("configs/study/paper.yaml"))
    assert study.name == "paper" and study.seeds == [0, 1, 2] and study.output == Path("runs/paper")
    assert study.configs == ["configs/paper/base.yaml"]  # the rows' shared settings, then each row's overlays
    rows = {c.name: (c.subcommand, c.configs) for c in study.conditions}
    fine = ["configs/paper/finetune.yaml"]  # the fine-tuning recipe, between the base and the row
    assert rows == {
        name: (command, [*extra, f"configs/paper/{name}.yaml"])
        for name, command, extra in (
            ("ltu_noninterleaved", "validate", []),
            ("ltu_interleaved", "validate", []),
            ("ft_small", "fit", fine),
            ("ft_large", "fit", fine),
        )
    }
    assert "--paths.llm=???" in study.overrides
    params = study.executor.submitit_parameters("paper")
    assert study.executor.kind == "slurm" and params["tasks_per_node"] == params["gpus_per_node"] == 2


def test_the_shipped_demo_replay_study_is_the_demo_against_its_replay_mixture_times_two_seeds(monkeypatch):
    """Four local runs: `demo` as configs/demo.yaml is, `replay` with train.jsonl and the demo's
    replay.jsonl mixed 0.8 / 0.2 over the demo's 416 records an epoch; resolved as train.py would."""
    from interleave.tools.study.cli import base_arguments, resolve, runs_of

    monkeypatch.chdir(REPO)
    study = load_study(Path("configs/study/demo_replay.yaml"))
    assert study.name == "demo_replay" and study.output == Path("runs/demo_replay") and study.executor.kind == "local"
    no_probes = "--trainer.callbacks.init_args.probes=[]"  # the demo's probes left out of the study
    assert study.configs == ["configs/demo.yaml"] and study.overrides == [no_probes]
    runs = runs_of(study)
    assert [r.name for r in runs] == ["demo/seed=0", "demo/seed=1", "replay/seed=0", "replay/seed=1"]
    sources = [
        {"path": "data/demo/train.jsonl", "weight": 0.8, "name": "labels"},
        {"path": "data/demo/replay.jsonl", "weight": 0.2, "name": "replay"},
    ]
    mixture = ["--data.train_file=null", f"--data.train_files={json.dumps(sources)}", "--data.epoch_records=416"]
    for run in runs:
        extra = mixture if run.condition == "replay" else []
        assert base_arguments(study, run) == [
            "fit",
            "--config",
            "configs/demo.yaml",
            no_probes,
            *extra,
            f"--seed_everything={run.seed}",
            f"--data.seed={run.seed}",
        ]
    data = resolve(base_arguments(study, runs[3]), "replay/seed=1")["data"]["init_args"]
    assert (data["train_file"], data["train_files"], data["epoch_records"]) == (None, sources, 416)
    demo = resolve(base_arguments(study, runs[0]), "demo/seed=0")
    assert demo["data"]["init_args"]["train_file"] == "data/demo/train.jsonl"
    # The override reaches the ShardEvaluation (the config's last callback) and nothing else: the SHARD
    # is still asked as the demo asks it, with the text-only control, only without the probes.
    shipped = yaml.safe_load(Path("configs/demo.yaml").read_text())["trainer"]["callbacks"]
    callbacks = demo["trainer"]["callbacks"]
    assert [c["class_path"] for c in callbacks][-1] == "callbacks.ShardEvaluation" == shipped[-1]["class_path"]
    assert shipped[-1]["init_args"]["probes"] == ["silence", "swap"] and callbacks[-1]["init_args"]["probes"] == []
    assert callbacks[-1]["init_args"]["text_control"] is True and callbacks[-1]["init_args"]["repeats"] == 4


BAD = [
    ("[1, 2]", "expected a mapping with conditions"),
    ("conditions: {a: {}}\nseeds: [0]\ncolour: red", "unknown key 'colour'"),
    ("config: BASE\nseeds: [0]", "conditions: expected a mapping"),
    ("config: BASE\nseeds: [0]\nconditions: {a: {command: test}}", "conditions.a.command: expected fit or validate"),
    (
        "config: BASE\nseeds: [0]\nconditions: {a: {overrides: [lora_r=2]}}",
        "conditions.a.overrides: expected --key=value",
    ),
    ("config: BASE\nseeds: [0]\nconditions: {a: {extra: 1}}", "conditions.a: unknown key 'extra'"),
    ("config: BASE\nseeds: [0]\nconditions: {a/b: {}}", "conditions.a/b: a condition's name is a folder name"),
    ("config: BASE\nseeds: [0, 0]\nconditions: {a: {}}", "seeds: expected a list of distinct integers"),
    ("config: BASE\nseeds: 3\nconditions: {a: {}}", "seeds: expected a list"),
    ("config: nowhere.yaml\nseeds: [0]\nconditions: {a: {}}", "config: no config file nowhere.yaml"),
    ("seeds: [0]\nconditions: {a: {}}", "conditions.a: no config"),
    ("config: BASE\nseeds: [0]\nconditions: {a: {}}\nexecutor: cloud", "executor: expected `local`, `slurm`"),
    (
        "config: BASE\nseeds: [0]\nconditions: {a: {}}\nexecutor: {kind: local, gpus: 2, parallel: 3}",
        "executor.parallel: 3 runs at a time need 3 GPUs",
    ),
    (
        "config: BASE\nseeds: [0]\nconditions: {a: {}}\nexecutor: {kind: slurm, time: soon}",
        "executor.time: expected minutes",
    ),
    (
        "config: BASE\nseeds: [0]\nconditions: {a: {}}\nexecutor: {kind: slurm, nodes: 0}",
        "executor.nodes: expected an integer >= 1",
    ),
    ("config: BASE\nseeds: [0]\nconditions: {a: {}}\nexecutor: {kind: slurm, gpus: 2}", "executor: unknown key 'gpus'"),
    (
        "config: BASE\nseeds: [0]\nconditions: {a: {}}\nexecutor: {kind: slurm, slurm: [account]}",
        "executor.slurm: expected a mapping",
    ),
    ("name: a b\nconfig: BASE\nseeds: [0]\nconditions: {a: {}}", "name: expected letters"),
    ("conditions: [", ":2:1: not valid YAML: while parsing a flow node, did not find expected node content"),
    ("config: BASE\nseeds: [0]\nseeds: [1]\nconditions: {a: {}}", ":3:1: seeds is given twice (first at line 2)"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m for _, m in BAD])
def test_a_bad_study_file_is_refused_naming_the_file_and_key(tmp_path, base, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("BASE", str(base)))
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert str(err.value).startswith(f"{path}") and message in str(err.value)


def test_a_missing_study_file_is_named(tmp_path):
    with pytest.raises(StudyError, match="nope.yaml: cannot read the study file"):
        load_study(tmp_path / "nope.yaml")


def test_a_condition_given_twice_is_refused_in_one_line_naming_the_file_line_and_key(tmp_path, base, capsys):
    """Issue 34: `conditions: {demo: {}, demo: {...}}` was read as one condition (YAML keeps the last):
    the first vanished from --status and from the runs. Now exit 2 and one line: file, line, key."""
    from interleave.tools.command import main

    path = tmp_path / "s.yaml"
    path.write_text(
        f"config: {base}\nseeds: [0]\nconditions: {{demo: {{}}, demo: {{overrides: {{model.lora_r: 4}}}}}}\n"
    )
    assert main(["study", str(path), "--status"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"error: {path}:3:24: conditions.demo is given twice (first at line 3); YAML would keep "
        "only the last one: remove or rename one of them\n"
    )
    assert captured.out == ""
    path.write_text(
        f"config: {base}\nseeds: [0]\nconditions:\n  demo: {{}}\n  other:\n    overrides: {{a: 1, b: 2}}\n"
        "  demo:\n    command: validate\n"
    )
    with pytest.raises(StudyError, match=r"s.yaml:7:3: conditions.demo is given twice \(first at line 4\)"):
        load_study(path)


def test_the_shipped_models_study_asks_three_families_the_papers_rows_1_to_3_with_the_probes(monkeypatch):
    """configs/study/models.yaml: LTU, Qwen2-Audio and AF3, each zero-shot in its native layout and
    interleaved, then FT-Small; the silence and swap probes everywhere; AF3 with its released
    sampling, the others with LTU's; each family's own paths left to set."""
    from interleave.tools.study.cli import base_arguments, resolve, runs_of

    monkeypatch.chdir(REPO)
    study = load_study(Path("configs/study/models.yaml"))
    assert study.name == "models" and study.seeds == [0, 1, 2] and study.output == Path("runs/models")
    assert study.configs == ["configs/paper/base.yaml", "configs/study/models/probes.yaml"]
    overlay = {"ltu": [], "qwen2_audio": ["configs/models/qwen2_audio.yaml"]}
    overlay["af3"] = ["configs/models/audio_flamingo3.yaml"]
    sampling = {"af3": ["configs/study/models/af3_sampling.yaml"]}
    row = {
        "native": ("validate", ["configs/paper/ltu_noninterleaved.yaml"]),
        "interleaved": ("validate", ["configs/paper/ltu_interleaved.yaml"]),
        "ft_small": ("fit", ["configs/paper/finetune.yaml", "configs/paper/ft_small.yaml"]),
    }
    expected = {
        f"{family}_{name}": (command, [*sampling.get(family, []), *configs, *overlay[family]])
        for family in overlay
        for name, (command, configs) in row.items()
    }
    assert {c.name: (c.subcommand, c.configs) for c in study.conditions} == expected
    assert len(runs_of(study)) == 27 and study.executor.kind == "slurm"
    runs = {r.name: r for r in runs_of(study)}
    for name, temperature in (("ltu_native", 0.1), ("qwen2_audio_interleaved", 0.1), ("af3_ft_small", 0.7)):
        args = [a.replace("=???", "=/x") for a in base_arguments(study, runs[f"{name}/seed=0"])]
        config = resolve(args, name)
        callbacks = config["trainer"]["callbacks"]
        shard = next(c for c in callbacks if c["class_path"] == "callbacks.ShardEvaluation")["init_args"]
        assert shard["probes"] == ["silence", "swap"] and shard["sampling"]["temperature"] == temperature
        assert shard["layout"] == ("noninterleaved" if name.endswith("native") else "interleaved")
        assert (config["model"]["pretrained"] is None) == name.startswith("ltu")
        if name.endswith("ft_small"):
            assert "lightning.pytorch.callbacks.ModelCheckpoint" in [c["class_path"] for c in callbacks]
