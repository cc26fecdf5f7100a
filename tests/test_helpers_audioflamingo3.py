"""The tiny Audio Flamingo 3 the tests build (`tests.helpers.save_tiny_audioflamingo3`) is what the
family releases: its folder's files and saved keys, its processor (one clip per text, a clip's
`<sound>`s 25 per second over 30-s windows), and a folder's chat template the only one it has."""

from __future__ import annotations

import pytest

from tests.helpers import af3_processor_inputs, clip, save_tiny_audioflamingo3


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_audioflamingo3(tmp_path_factory.mktemp("af3"))


def test_the_folder_and_its_saved_keys_are_the_released_layout(folder):
    from safetensors import safe_open
    from transformers import AutoProcessor

    assert {"config.json", "model.safetensors", "chat_template.jinja", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()
    }
    with safe_open(folder / "model.safetensors", "pt") as weights:
        roots = {key.split(".")[0] for key in weights.keys()}
        names = set(weights.keys())
    assert roots == {"audio_tower", "multi_modal_projector", "language_model"}
    assert {"multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_2.bias"} <= names
    assert type(AutoProcessor.from_pretrained(folder)).__name__ == "AudioFlamingo3Processor"


def test_the_processor_takes_one_clip_per_text(folder):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    with pytest.raises(ValueError, match="must match 1:1"):
        processor(text=["<sound>Hi"], audio=[clip(1.0), clip(2.0)], sampling_rate=16000)


@pytest.mark.parametrize(("seconds", "expected"), [(1.0, 25), (30.0, 750), (34.0, 850), (60.0, 1500)])
def test_a_clips_sounds_are_25_per_second_over_its_windows(folder, seconds, expected):
    from transformers import AutoProcessor

    inputs = af3_processor_inputs(folder, [(clip(seconds), "Hi", None)])
    sound = AutoProcessor.from_pretrained(folder).tokenizer.convert_tokens_to_ids("<sound>")
    assert int((inputs["input_ids"] == sound).sum()) == expected
    assert inputs["input_features"].shape[0] == -(-int(seconds) // 30)  # one row of features per window


def test_the_chat_template_puts_one_sound_before_the_text_wherever_the_clip_stood(folder):
    from transformers import AutoProcessor

    from tests.helpers import conversation

    processor = AutoProcessor.from_pretrained(folder)
    after = processor.apply_chat_template(conversation(["Is ", clip(1.0), " a siren?"]), tokenize=False)
    assert "<|im_start|>user\n<sound>Is  a siren?<|im_end|>" in after
