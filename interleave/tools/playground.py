"""`interleave playground --config CONFIG [--ckpt CKPT]`: ask a model about your own clips in the
browser, the audio where `[AUDIO]` stands and in LTU's layout (audio first) side by side.

A Gradio page on 127.0.0.1 (`--host 0.0.0.0` to serve others; no share link, no analytics): upload
or record a clip, write a prompt with one `[AUDIO]` or pick Table 1's synonym, hypernym or identity
question, and get both layouts' sampled answers, their yes/no verdicts under the run's parser,
P(yes) if asked, the seed and sampling settings that reproduce them, and each clip's fbank. The
answers come from `interleave.tools.playground_ask`, which follows the evaluation's code path.
Bad input (an unreadable clip, a clip count that does not match the placeholders, a prompt longer
than the context, a checkpoint that does not fit the config) gets a message in the page.
Gradio is the optional extra `playground` (`pip install -e ".[playground]"`; `make setup` has it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from typing import Any

from interleave.errors import InterleaveError, report_errors
from interleave.tools.playground_ask import (
    MAX_CLIPS,
    TEMPLATES,
    PlaygroundError,
    Question,
    Served,
    ask,
    build_served,
    describe,
    fbank_image,
    load_checkpoint,
    template_prompts,
)

CLIP_SLOTS = MAX_CLIPS  # clip inputs on the page, one per [AUDIO]
LOG = logging.getLogger("interleave.playground")


def import_gradio() -> Any:
    """Gradio, offline: analytics off before it is imported (it reads the variable then)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError:
        raise InterleaveError('the playground needs Gradio: pip install -e ".[playground]" (make setup installs it)') from None
    return gradio


def handle_ask(served: Served, prompt: str, ltu_prompt: str, template: str, clips: list[str | None],
               greedy: bool, temperature: float, top_p: float, top_k: int, repetition_penalty: float,
               max_new_tokens: int, repeats: int, seed: int, score: bool) -> tuple[str, str, str, Any, dict]:
    """The page's Ask: (message, interleaved answers, LTU-layout answers, the clips' fbanks, details).
    Every failure becomes the message; the server lives on."""
    try:
        numbers = dict(temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty,
                       max_new_tokens=max_new_tokens, repeats=repeats, seed=seed)
        if blank := [name.replace("_", " ") for name, value in numbers.items() if value is None]:
            raise PlaygroundError(f"Fill in the sampling settings: {', '.join(blank)}.")
        question = Question(
            prompt=prompt or "", ltu_prompt=ltu_prompt or "", clips=[c for c in clips if c],
            sampling=replace(served.settings.sampling, do_sample=not greedy, temperature=float(temperature), top_p=float(top_p),
                             top_k=int(top_k), repetition_penalty=float(repetition_penalty),
                             max_new_tokens=int(max_new_tokens)),
            repeats=int(repeats), seed=int(seed), score=bool(score), yes_no=template != "identity")
        result = ask(served, question)
    except InterleaveError as err:
        return f"**{err}**", "", "", None, {}
    except Exception as err:  # noqa: BLE001 - a bug must not kill the page; its trace goes to the log
        LOG.exception("playground: unexpected error")
        return f"**Internal error ({type(err).__name__}: {err}); the trace is in the server's log.**", "", "", None, {}
    shown = describe(result)
    image = fbank_image(result["clips"])
    details = {**result, "clips": [{k: v for k, v in c.items() if k != "fbank"} for c in result["clips"]]}
    errors = [e["error"] for e in result["layouts"].values() if "error" in e]
    message = f"Serving {result['serving']}; seed {result['seed']}." + "".join(f"\n\n**{e}**" for e in errors)
    ltu = shown.get("noninterleaved", "LTU's layout holds one clip, before the prompt.")
    return message, shown["interleaved"], ltu, image, details


def status_text(served: Served) -> str:
    """What the page says it serves, and why a checkpoint asked for at start-up is not served."""
    return f"Serving {served.serving}." + (f"\n\n**{served.note}**" if served.note else "")


def handle_load(served: Served, path: str) -> str:
    """The page's Load: a checkpoint (or none: the zero-shot model); failures are the message."""
    try:
        return f"Serving {load_checkpoint(served, path or '')}."
    except InterleaveError as err:
        return f"**{err}; still serving {served.serving}.**"


def build_page(served: Served, defaults: dict[str, Any] | None = None) -> Any:
    """The Gradio page (not launched). `defaults` pre-fill fields: clip, template, word, prompt."""
    gr = import_gradio()
    defaults = defaults or {}
    s = served.settings.sampling
    template0 = defaults.get("template") or "free text"
    interleaved0, ltu0 = template_prompts(template0, defaults.get("word", ""), served.settings.table)
    with gr.Blocks(title="interleave playground", analytics_enabled=False) as page:
        gr.Markdown("# interleave playground\nThe same question with the audio where `[AUDIO]` stands "
                    "and in LTU's layout (audio before the prompt), answered as the SHARD evaluation answers.")
        status = gr.Markdown(status_text(served))
        with gr.Row():
            with gr.Column(scale=3):
                template = gr.Dropdown(list(TEMPLATES), value=template0, label="template (Table 1's questions)")
                word = gr.Textbox(value=defaults.get("word", ""), label="word (synonym / hypernym to ask about)")
                prompt = gr.Textbox(value=defaults.get("prompt") or interleaved0, lines=2,
                                    label="prompt: one [AUDIO] per clip, where it goes")
                ltu_prompt = gr.Textbox(value=ltu0, lines=2, label="the same question in LTU's layout (no [AUDIO]; "
                                        "empty: the prompt with [AUDIO] read as 'this audio')")
            with gr.Column(scale=2):
                clips = [gr.Audio(value=defaults.get("clip"), type="filepath", sources=["upload", "microphone"],
                                  label="clip 1")]
                with gr.Accordion(f"more clips (a prompt holds up to {MAX_CLIPS}, one [AUDIO] each, in order)", open=False):
                    clips += [gr.Audio(type="filepath", sources=["upload", "microphone"], label=f"clip {i}")
                              for i in range(2, CLIP_SLOTS + 1)]
        with gr.Accordion("sampling (the config's evaluation settings: LTU's)", open=False):
            with gr.Row():
                greedy = gr.Checkbox(value=not s.do_sample, label="greedy")
                temperature = gr.Number(value=s.temperature, label="temperature")
                top_p = gr.Number(value=s.top_p, label="top-p")
                top_k = gr.Number(value=s.top_k, precision=0, label="top-k")
                penalty = gr.Number(value=s.repetition_penalty, label="repetition penalty")
            with gr.Row():
                max_new = gr.Number(value=s.max_new_tokens, precision=0, label="max new tokens")
                repeats = gr.Number(value=served.settings.repeats, precision=0, label="answers (repeats)")
                seed = gr.Number(value=served.settings.seed, precision=0, label="seed")
                score = gr.Checkbox(value=bool(defaults.get("score")), label="P(yes) against P(no) (scoring mode)")
        button = gr.Button("Ask", variant="primary")
        message = gr.Markdown()
        with gr.Row():
            with gr.Column():
                gr.Markdown("### interleaved: the audio where [AUDIO] stands")
                interleaved_out = gr.Markdown()
            with gr.Column():
                gr.Markdown("### LTU's layout: the audio first")
                ltu_out = gr.Markdown()
        images = gr.Image(label="fbank: what the encoder sees (1024 frames × 128 mel bins per clip)", type="numpy",
                          interactive=False)
        with gr.Accordion("details: everything to reproduce the answers", open=False):
            details = gr.JSON()
        with gr.Accordion("model: load another checkpoint (empty or 'none': the zero-shot model)", open=False):
            ckpt = gr.Textbox(label="checkpoint (.ckpt) on the server")
            load = gr.Button("Load")

        def on_ask(prompt_, ltu_, template_, *rest: Any) -> tuple:
            return handle_ask(served, prompt_, ltu_, template_, list(rest[:CLIP_SLOTS]), *rest[CLIP_SLOTS:])

        inputs = [prompt, ltu_prompt, template, *clips, greedy, temperature, top_p, top_k, penalty, max_new, repeats,
                  seed, score]
        outputs = [message, interleaved_out, ltu_out, images, details]
        button.click(on_ask, inputs, outputs, api_name="ask", concurrency_id="model")
        def on_template(template_: str, word_: str) -> tuple:
            """Table 1's question about the word in both layouts; free text keeps what is written."""
            return template_prompts(template_, word_, served.settings.table) if template_ != "free text" else (gr.skip(), gr.skip())

        template.change(on_template, [template, word], [prompt, ltu_prompt], api_name="template")
        word.change(on_template, [template, word], [prompt, ltu_prompt], api_visibility="private")
        load.click(lambda p: handle_load(served, p), [ckpt], [status], api_name="load", concurrency_id="model")
    return page


def launch(page: Any, host: str = "127.0.0.1", port: int | None = None, block: bool = True) -> Any:
    """Serve `page` on host:port (no share link, no analytics, system fonts); `block=False` returns at once."""
    gr = import_gradio()
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: it works offline
    page.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=not block,
                theme=theme, footer_links=[])
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interleave playground", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the run's config (configs/demo.yaml, ...)")
    parser.add_argument("--ckpt", help="a training checkpoint; 'none': the zero-shot model; default: the newest of "
                        "the config's run folders (runs/demo/version_N/checkpoints for the demo), else zero-shot")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free one)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--clip", help="a clip to pre-load into the page")
    parser.add_argument("--template", choices=TEMPLATES, help="the template to pre-select")
    parser.add_argument("--word", default="", help="the template's word to pre-fill")
    parser.add_argument("--prompt", help="the prompt to pre-fill")
    parser.add_argument("--score", action="store_true", help="tick P(yes) against P(no)")
    args = parser.parse_args(argv)

    def run() -> None:
        import torch

        import_gradio()  # before the model is built: a missing extra is said at once
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        served = build_served(args.config, args.ckpt, device)
        if served.note:
            print(f"error: {served.note}", file=sys.stderr, flush=True)
        print(f"[interleave] playground: serving {served.serving} on {device}", flush=True)
        defaults = {"clip": args.clip, "template": args.template, "word": args.word, "prompt": args.prompt,
                    "score": args.score}
        launch(build_page(served, defaults), args.host, args.port)

    return report_errors(run)


if __name__ == "__main__":
    sys.exit(main())
