"""interleave.spec: `DataSpec`, the model's side of the model <-> data handshake, defaults to LTU's (32
positions per clip, the Kaldi fbank and the 10.255 s it holds); the model states its own."""

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.audio import FBANK_SECONDS, load_fbank
from interleave.spec import DataSpec


def test_a_spec_of_only_a_tokenizer_is_ltus():
    spec = DataSpec("tokenizer")
    assert (spec.audio_tokens, spec.audio_loader, spec.heard_seconds) == (NUM_AUDIO_TOKENS, load_fbank, FBANK_SECONDS)


def test_the_model_states_its_encoders_loader_and_positions(tiny_model_kwargs):
    from interleave.model.module import AudioLLM

    model = AudioLLM(**{**tiny_model_kwargs, "audio_tokens": 8})
    spec = model.data_spec()
    assert isinstance(spec, DataSpec) and spec.tokenizer is model.tokenizer and spec.audio_tokens == 8
    assert (
        spec.audio_loader == model.audio_encoder.load_inputs and spec.heard_seconds == model.audio_encoder.heard_seconds
    )
