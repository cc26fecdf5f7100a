"""The YAML a run's configs are read with, and their `paths:` block.

**YAML read strictly.** Every YAML file the project reads that a person wrote (a `--config` of
`train.py` and of every tool, each overlay of several `--config`, a config file named inside
one, a study file) is checked first by `yaml_fault`: malformed YAML is one `ConfigFileError`
naming the file, line and column, and a mapping that gives a key twice (`{demo: {}, demo: {...}}`,
which YAML would read as the last alone, the first vanishing silently) is refused the same way,
naming the key and both lines. `install_yaml_check` puts the check in front of jsonargparse's
`omegaconf+` loader (`interleave.cli` does, before it parses); `read_yaml` is it for the files
read outside jsonargparse (the study file). A value typed on the command line keeps jsonargparse's
own handling (a prompt is not YAML).

**The `paths:` block**: named paths that the rest of a config interpolates
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

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonargparse._typehints import ActionTypeHint  # pinned jsonargparse; tests/test_config_paths.py covers it

from interleave.errors import InterleaveError

PARSER_MODE = "omegaconf+"  # train.py's (interleave.cli): `${...}` resolved after every source is merged
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"  # `<<: *anchor`


class ConfigFileError(InterleaveError):
    """A YAML file that cannot be read as written: malformed, or a key given twice; names the file,
    the line and column, and the key."""


def yaml_fault(text: str, file: str) -> str | None:
    """Why `text`, the YAML of `file`, cannot be read as written (`FILE:LINE:COLUMN: reason`), or None."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else file
        reason = ", ".join(part for part in (err.context, err.problem) if part)  # as PyYAML words them
        return f"{where}: not valid YAML: {reason}"
    except yaml.YAMLError as err:
        return f"{file}: not valid YAML: {' '.join(str(err).split())}"
    for key, first in _repeated_keys(node, "", set()):
        mark = key.start_mark
        return (
            f"{file}:{mark.line + 1}:{mark.column + 1}: {first[0]} is given twice (first at line {first[1]}); "
            "YAML would keep only the last one: remove or rename one of them"
        )
    return None


def _repeated_keys(node: Any, where: str, seen: set[int]) -> Iterator[tuple[yaml.Node, tuple[str, int]]]:
    """Each mapping key given again in the same mapping, in the file's order, with (its dotted path,
    the line it was first given at)."""
    if node is None or id(node) in seen:  # an alias is the node it names: walked once
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            path = f"{where}.{name}" if where else str(name)
            if name is not None and key.tag != _MERGE:
                if (key.tag, name) in first:
                    yield key, (path, first[key.tag, name])
                first.setdefault((key.tag, name), key.start_mark.line + 1)
            yield from _repeated_keys(value, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _repeated_keys(item, f"{where}[{i}]", seen)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, checked by `yaml_fault` (a fault is a `ConfigFileError`; an unreadable
    file too, naming it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigFileError(
            f"{path}: cannot read it ({getattr(err, 'strerror', None) or type(err).__name__})"
        ) from None
    fault = yaml_fault(text, str(path))
    if fault:
        raise ConfigFileError(fault)
    return yaml.load(text, Loader=_LOADER)


def _file_being_read(value: str, path: str) -> str | None:
    """The config file whose whole text jsonargparse is loading as `value`, as the user named it,
    or None for a value from the command line."""
    from jsonargparse._util import config_load_stack  # (real path, as given) of each file being read

    stack = config_load_stack.get()
    if stack:
        real, given = stack[-1]
        if path:
            return given
        try:  # a config file named inside another (`data: data.yaml`): loaded without its name
            return given if Path(real).read_text(encoding="utf-8") == value else None
        except (OSError, UnicodeDecodeError):
            return None
    return path or None


def install_yaml_check(mode: str = PARSER_MODE) -> None:
    """Put `yaml_fault` in front of jsonargparse's loader of `mode`, for whole config files (once)."""
    from jsonargparse import get_loader, set_loader
    from jsonargparse._loaders_dumpers import get_loader_exceptions, set_omegaconf_loader

    set_omegaconf_loader(mode)  # jsonargparse sets it lazily, at its first load
    original = get_loader(mode)
    if getattr(original, "checks_yaml", False):
        return

    def load(value: str, path: str = "") -> Any:
        file = _file_being_read(value, path)
        if file is not None:
            fault = yaml_fault(value, file)
            if fault:
                raise ConfigFileError(fault)
        return original(value)

    load.checks_yaml = True  # type: ignore[attr-defined]
    set_loader(mode, load, get_loader_exceptions(mode))


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
    parser.add_argument(
        "--paths",
        action=PathsAction(typehint=PATHS_TYPE),
        default={},
        help="named paths that the configs interpolate (${paths.NAME}), merged over every --config",
    )
