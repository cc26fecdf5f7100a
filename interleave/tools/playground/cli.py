"""`interleave playground --config CONFIG [--ckpt CKPT]`: ask a model about your own clips in the
browser, the audio where `[AUDIO]` stands and in LTU's layout (audio first) side by side.
`--config` may be given several times and train.py's overrides follow, as a run was started:
`--config configs/demo.yaml --config configs/models/qwen2_audio.yaml --paths.qwen2_audio=DIR`
serves a released Qwen2-Audio's run in its chat layout, each clip's span as long as the clip.

A Gradio page on 127.0.0.1 (`--host 0.0.0.0 --auth USER:PASSWORD` to serve a lab; no share link, no
analytics): upload
or record a clip, write a prompt with one `[AUDIO]` or pick Table 1's synonym, hypernym or identity
question, and get both layouts' sampled answers, their yes/no verdicts under the run's parser,
P(yes) if asked, the seed and sampling settings that reproduce them, and each clip's fbank. The
answers come from `interleave.tools.playground.ask`, which follows the evaluation's code path.
Bad input (an unreadable clip, a clip count that does not match the placeholders, a prompt longer
than the context, a checkpoint that does not fit the config) gets a message in the page.
Served beyond this machine it needs a sign-in (`--auth`, `--auth-file`, or an explicit `--no-auth`);
the page loads only checkpoints listed from the config's run folders and `--ckpt-root` folders;
uploads are bounded (`--max-upload-mb`, `--max-clip-seconds`; only what the encoder hears is
decoded); requests wait in Gradio's queue and use the model one at a time, the page showing each
its place in the queue.
Gradio is the optional extra `playground` (`pip install -e ".[playground]"`; `make setup` has it).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError, report_errors
from interleave.tools.playground.ask import (
    MAX_CLIPS,
    TEMPLATES,
    Limits,
    PlaygroundError,
    Question,
    Served,
    ask,
    build_served,
    describe,
    fbank_image,
    listed_checkpoints,
    load_listed,
    template_prompts,
)

CLIP_SLOTS = MAX_CLIPS  # clip inputs on the page, one per [AUDIO]
LOG = logging.getLogger("interleave.playground")
QUEUE_SIZE = 64  # requests waiting at most (Gradio's queue); more are told the queue is full
NO_AUTH_WARNING = (
    "Served without sign-in (--no-auth): anyone who can reach this address can use the model "
    "and read its answers about their uploads."
)
Credentials = list[tuple[str, str]]


def import_gradio() -> Any:
    """Gradio, offline: analytics off before it is imported (it reads the variable then)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError:
        raise InterleaveError(
            'the playground needs Gradio: pip install -e ".[playground]" (make setup installs it)'
        ) from None
    return gradio


def handle_ask(
    served: Served,
    prompt: str,
    ltu_prompt: str,
    template: str,
    clips: list[str | None],
    greedy: bool,
    temperature: float,
    top_p: float,
    top_k: int,
    repetition_penalty: float,
    max_new_tokens: int,
    repeats: int,
    seed: int,
    score: bool,
) -> tuple[str, str, str, Any, dict]:
    """The page's Ask: (message, interleaved answers, LTU-layout answers, the clips' fbanks, details).
    Every failure becomes the message; the server lives on."""
    try:
        numbers = dict(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            repetition_penalty=repetition_penalty,
            max_new_tokens=max_new_tokens,
            repeats=repeats,
            seed=seed,
        )
        if blank := [name.replace("_", " ") for name, value in numbers.items() if value is None]:
            raise PlaygroundError(f"Fill in the sampling settings: {', '.join(blank)}.")
        question = Question(
            prompt=prompt or "",
            ltu_prompt=ltu_prompt or "",
            clips=[c for c in clips if c],
            sampling=replace(
                served.settings.sampling,
                do_sample=not greedy,
                temperature=float(temperature),
                top_p=float(top_p),
                top_k=int(top_k),
                repetition_penalty=float(repetition_penalty),
                max_new_tokens=int(max_new_tokens),
            ),
            repeats=int(repeats),
            seed=int(seed),
            score=bool(score),
            yes_no=template != "identity",
        )
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
    heard = [
        f"Clip {i} lasts {c['seconds']} s: the model hears its first {c['heard']} s."
        for i, c in enumerate(result["clips"], 1)
        if c["seconds"] > c["heard"]
    ]
    message = (
        f"Serving {result['serving']}; seed {result['seed']}."
        + "".join(f"\n\n{h}" for h in heard)
        + "".join(f"\n\n**{e}**" for e in errors)
    )
    ltu = shown.get("noninterleaved", "LTU's layout holds one clip, before the prompt.")
    return message, shown["interleaved"], ltu, image, details


def status_text(served: Served) -> str:
    """What the page says it serves, and why a checkpoint asked for at start-up is not served."""
    return f"Serving {served.serving}." + (f"\n\n**{served.note}**" if served.note else "")


def handle_load(served: Served, path: str) -> str:
    """The page's Load: a listed checkpoint (or none: the zero-shot model); failures are the message,
    and a path off the list gets the same one whatever it is (`load_listed`)."""
    try:
        return f"Serving {load_listed(served, path or '')}."
    except InterleaveError as err:
        return f"**{err}; still serving {served.serving}.**"
    except Exception as err:  # noqa: BLE001 - a bug must not kill the page; its trace goes to the log
        LOG.exception("playground: unexpected error while loading a checkpoint")
        return f"**Internal error ({type(err).__name__}); the trace is in the server's log; still serving {served.serving}.**"


def picture_label(served: Served) -> str:
    """What the clips' picture shows: LTU's fbank, which CAV-MAE reads; another encoder reads its
    own features (Qwen2-Audio's tower: a 128-bin log-mel of up to 30 s), so the page says so."""
    kind = served.model.audio_encoder.kind
    if kind == "cavmae":
        return "fbank: what the encoder sees (1024 frames × 128 mel bins per clip)"
    return f"fbank of each clip's first 10.24 s (LTU's features; the {kind} encoder reads its own)"


def checkpoint_choices(served: Served) -> list[str]:
    """What the model panel offers: the zero-shot model, then the listed checkpoints, newest first."""
    return ["none", *listed_checkpoints(served.roots)]


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_serving(host: str, credentials: Credentials, no_auth: bool) -> str:
    """Refuse to serve beyond this machine without a sign-in, before anything is bound; returns
    the warning to print and show when `--no-auth` serves beyond it anyway ("" otherwise)."""
    if is_loopback(host) or credentials:
        return ""
    if not no_auth:
        raise InterleaveError(
            f"--host {host} serves beyond this machine: give a sign-in with --auth USER:PASSWORD "
            "(repeatable) or --auth-file FILE (one user:password per line), or pass --no-auth to "
            "serve without one"
        )
    return NO_AUTH_WARNING


def read_credentials(pairs: list[str], auth_file: str | None) -> Credentials:
    """The `--auth USER:PASSWORD` pairs and the lines of `--auth-file` (blank lines and `#` comments
    skipped). A bad line is named by its number, never shown: it may hold a password. A user given
    twice is refused, naming both places (which password would hold is not for Gradio to pick)."""
    found = []
    given: dict[str, str] = {}  # user -> where it was first given

    def add(user: str, password: str, where: str) -> None:
        if user in given:
            raise InterleaveError(
                f"{where}: user {user!r} is given twice (first at {given[user]}); give each user one password"
            )
        given[user] = where
        found.append((user, password))

    for i, pair in enumerate(pairs, 1):
        user, sep, password = pair.partition(":")
        if not (sep and user and password):
            raise InterleaveError(f"--auth number {i} is not USER:PASSWORD (both non-empty)")
        add(user, password, f"--auth number {i}")
    if auth_file:
        try:
            lines = Path(auth_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise InterleaveError(f"{auth_file}: the auth file cannot be read ({type(err).__name__})") from None
        before = len(found)
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            user, sep, password = line.strip().partition(":")
            if not (sep and user and password):
                raise InterleaveError(f"{auth_file}:{number}: not a user:password line (both non-empty)")
            add(user, password, f"{auth_file}:{number}")
        if len(found) == before:
            raise InterleaveError(f"{auth_file}: the auth file holds no user:password line")
    return found


def build_page(served: Served, defaults: dict[str, Any] | None = None, warning: str = "") -> Any:
    """The Gradio page (not launched). `defaults` pre-fill fields: clip, template, word, prompt;
    `warning` is shown at the top (serving without sign-in)."""
    gr = import_gradio()
    defaults = defaults or {}
    s = served.settings.sampling
    template0 = defaults.get("template") or "free text"
    interleaved0, ltu0 = template_prompts(template0, defaults.get("word", ""), served.settings.table)
    with gr.Blocks(title="interleave playground", analytics_enabled=False) as page:
        gr.Markdown(
            "# interleave playground\nThe same question with the audio where `[AUDIO]` stands "
            "and in LTU's layout (audio before the prompt), answered as the SHARD evaluation answers."
        )
        if warning:
            gr.Markdown(f"**Warning: {warning}**")
        status = gr.Markdown(status_text(served))
        with gr.Row():
            with gr.Column(scale=3):
                template = gr.Dropdown(list(TEMPLATES), value=template0, label="template (Table 1's questions)")
                word = gr.Textbox(value=defaults.get("word", ""), label="word (synonym / hypernym to ask about)")
                prompt = gr.Textbox(
                    value=defaults.get("prompt") or interleaved0,
                    lines=2,
                    label="prompt: one [AUDIO] per clip, where it goes",
                )
                ltu_prompt = gr.Textbox(
                    value=ltu0,
                    lines=2,
                    label="the same question in LTU's layout (no [AUDIO]; "
                    "empty: the prompt with [AUDIO] read as 'this audio')",
                )
            with gr.Column(scale=2):
                clips = [
                    gr.Audio(
                        value=defaults.get("clip"), type="filepath", sources=["upload", "microphone"], label="clip 1"
                    )
                ]
                with gr.Accordion(
                    f"more clips (a prompt holds up to {MAX_CLIPS}, one [AUDIO] each, in order)", open=False
                ):
                    clips += [
                        gr.Audio(type="filepath", sources=["upload", "microphone"], label=f"clip {i}")
                        for i in range(2, CLIP_SLOTS + 1)
                    ]
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
        images = gr.Image(label=picture_label(served), type="numpy", interactive=False)
        with gr.Accordion("details: everything to reproduce the answers", open=False):
            details = gr.JSON()
        with gr.Accordion("model: load another checkpoint ('none': the zero-shot model)", open=False):
            ckpt = gr.Dropdown(
                checkpoint_choices(served),
                value=None,
                allow_custom_value=True,
                label="checkpoints of the config's runs and the server's --ckpt-root folders",
            )
            with gr.Row():
                refresh = gr.Button("Refresh the list")
                load = gr.Button("Load")

        def on_ask(prompt_, ltu_, template_, *rest: Any) -> tuple:
            return handle_ask(served, prompt_, ltu_, template_, list(rest[:CLIP_SLOTS]), *rest[CLIP_SLOTS:])

        inputs = [
            prompt,
            ltu_prompt,
            template,
            *clips,
            greedy,
            temperature,
            top_p,
            top_k,
            penalty,
            max_new,
            repeats,
            seed,
            score,
        ]
        outputs = [message, interleaved_out, ltu_out, images, details]
        button.click(on_ask, inputs, outputs, api_name="ask", concurrency_id="model")

        def on_template(template_: str, word_: str) -> tuple:
            """Table 1's question about the word in both layouts; free text keeps what is written."""
            return (
                template_prompts(template_, word_, served.settings.table)
                if template_ != "free text"
                else (gr.skip(), gr.skip())
            )

        template.change(on_template, [template, word], [prompt, ltu_prompt], api_name="template")
        word.change(on_template, [template, word], [prompt, ltu_prompt], api_visibility="private")
        load.click(lambda p: handle_load(served, p), [ckpt], [status], api_name="load", concurrency_id="model")
        refresh.click(lambda: gr.Dropdown(choices=checkpoint_choices(served)), None, [ckpt], api_name="checkpoints")
    return page


def launch(
    page: Any,
    host: str = "127.0.0.1",
    port: int | None = None,
    block: bool = True,
    credentials: Credentials | None = None,
    max_upload_mb: float = Limits.max_bytes / 2**20,
    queue_size: int = QUEUE_SIZE,
) -> Any:
    """Serve `page` on host:port (no share link, no analytics, system fonts) behind Gradio's sign-in
    when `credentials` are given, with Gradio's queue (the model one request at a time, the page
    showing each waiting request its place) and its upload limit; `block=False` returns at once.
    Blocking, it prints the page's address and serves until Ctrl-C, then closes the server and lets
    the interrupt reach `report_errors` (one `interrupted:` line). Gradio's own lines are kept quiet:
    among them its tip to "set `share=True` in `launch()`", which this command never does."""
    gr = import_gradio()
    page.queue(default_concurrency_limit=1, max_size=queue_size)
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )  # no web fonts: it works offline
    page.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        quiet=True,
        theme=theme,
        footer_links=[],
        auth=credentials or None,
        max_file_size=int(max_upload_mb * 2**20),
        auth_message="Sign in to the interleave playground." if credentials else None,
    )
    if block:
        print(f"* Running on local URL:  {page.local_url.rstrip('/')}", flush=True)
        try:
            while page.is_running:
                time.sleep(0.1)
        finally:
            page.close()
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="interleave playground",
        description=__doc__.splitlines()[0],
        epilog="Other arguments are train.py's overrides (--paths.x=..., --data.x=...).",
    )
    parser.add_argument(
        "--config",
        action="append",
        required=True,
        help="the run's config (configs/demo.yaml, ...; several: in order, as train.py takes them)",
    )
    parser.add_argument(
        "--ckpt",
        help="a training checkpoint; 'none': the zero-shot model; default: the newest of "
        "the config's run folders (runs/demo/version_N/checkpoints for the demo), else zero-shot",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free one)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--clip", help="a clip to pre-load into the page")
    parser.add_argument("--template", choices=TEMPLATES, help="the template to pre-select")
    parser.add_argument("--word", default="", help="the template's word to pre-fill")
    parser.add_argument("--prompt", help="the prompt to pre-fill")
    parser.add_argument("--score", action="store_true", help="tick P(yes) against P(no)")
    parser.add_argument(
        "--auth",
        action="append",
        default=[],
        metavar="USER:PASSWORD",
        help="sign-in (repeatable); needed to serve beyond this machine unless --no-auth",
    )
    parser.add_argument("--auth-file", metavar="FILE", help="sign-ins, one user:password per line (read, never shown)")
    parser.add_argument("--no-auth", action="store_true", help="serve beyond this machine without sign-in (warned)")
    parser.add_argument(
        "--ckpt-root",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose checkpoints the page may load, besides the config's run folders "
        "(repeatable); the page loads no other path",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=Limits.max_bytes / 2**20,
        help="largest clip accepted, in MB of 2^20 bytes (default %(default)g)",
    )
    parser.add_argument(
        "--max-clip-seconds",
        type=float,
        default=Limits.max_seconds,
        help="longest clip accepted (default %(default)g s; the model hears its first 10.24 s, "
        "a released model its own length: Qwen2-Audio 30 s)",
    )
    parser.add_argument(
        "--queue-size", type=int, default=QUEUE_SIZE, help="requests that may wait for the model (default %(default)s)"
    )
    args, overrides = parser.parse_known_args(argv)
    from interleave.cli import stray_overrides

    if unknown := stray_overrides(overrides):
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (train.py's overrides are --key.name=value)")

    def run() -> None:
        credentials = read_credentials(args.auth, args.auth_file)
        if missing := [root for root in args.ckpt_root if not Path(root).is_dir()]:
            raise InterleaveError(f"--ckpt-root {missing[0]}: not a folder")
        warning = check_serving(args.host, credentials, args.no_auth)  # before anything is built or bound
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        import torch

        import_gradio()  # before the model is built: a missing extra is said at once
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        limits = Limits(max_bytes=int(args.max_upload_mb * 2**20), max_seconds=args.max_clip_seconds)
        served = build_served(args.config, args.ckpt, device, roots=args.ckpt_root, limits=limits, overrides=overrides)
        if served.note:
            print(f"error: {served.note}", file=sys.stderr, flush=True)
        print(f"[interleave] playground: serving {served.serving} on {device}", flush=True)
        defaults = {
            "clip": args.clip,
            "template": args.template,
            "word": args.word,
            "prompt": args.prompt,
            "score": args.score,
        }
        launch(
            build_page(served, defaults, warning),
            args.host,
            args.port,
            credentials=credentials,
            max_upload_mb=args.max_upload_mb,
            queue_size=args.queue_size,
        )

    return report_errors(run, what="interleave playground", kept="the server is closed")


if __name__ == "__main__":
    sys.exit(main())
