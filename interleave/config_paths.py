"""The `paths:` block of a run's configs: named paths that the rest of a config interpolates
(`${paths.llm}`), merged key by key over every `--config` given and every `--paths.NAME=...`.

A config names the paths it needs, `???` where the user must set one; a later config adds its
own names and may change earlier ones; `--paths.NAME=VALUE` sets one. So a row of the paper
and a model overlay (`--config configs/paper/base.yaml --config configs/paper/ltu_interleaved.yaml
--config configs/models/whisper.yaml`) leave one block holding every name any of them uses.

jsonargparse replaces a `dict` argument whole when a later config file sets it (only its
command-line form `--paths.NAME=...` updates one key), so an overlay's `paths:` used to drop
the row's (`Interpolation key 'paths.runs' not found`). `PathsAction` is that argument's action
with one change: a dict merges into the one parsed before it instead of replacing it.
"""

from __future__ import annotations

from typing import Any

from jsonargparse._typehints import ActionTypeHint  # pinned jsonargparse; tests/test_config_paths.py covers it

PATHS_TYPE = dict[str, str]


class PathsAction(ActionTypeHint):
    """`--paths` (a `dict[str, str]`) whose values from several configs are merged, later ones winning."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args:  # argparse building the action for `add_argument`: keep this class
            return PathsAction(_typehint=self._typehint, _enable_path=self._enable_path, **kwargs)
        return super().__call__(*args, **kwargs)

    def _check_type(self, value: Any, append: bool = False, cfg: Any = None, mode: str | None = None) -> Any:
        value = super()._check_type(value, append=append, cfg=cfg, mode=mode)
        before = cfg.get(self.dest) if cfg is not None else None
        if isinstance(before, dict) and isinstance(value, dict):
            return {**before, **value}
        return value


def add_paths_argument(parser: Any) -> None:
    """Give `parser` the `--paths` block (empty by default)."""
    parser.add_argument("--paths", action=PathsAction(typehint=PATHS_TYPE), default={},
                        help="named paths that the configs interpolate (${paths.NAME}), merged over every --config")
