"""Data confinement: the files a dashboard visitor may name are those under the allowed data folders.

`confine(paths, roots)` expands what a visitor typed (files, globs, folders; `~` first) into files and
checks every one of them, after symlinks and `..` are resolved, against the allowed roots
(`settings.data_roots`, RFM_DATA_ROOTS). It is called before anything looks at a file: the cache key
(`datasets.source_key`, which stats the files), the column-mapping preview (`datasets.check_mapping`)
and every reader get the confined files, never the text the visitor typed.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from rfm.data.sources import expand_paths
from rfm.errors import DataError, short_repr

ROOTS_SETTING = "RFM_DATA_ROOTS"


def confine(paths: Sequence[str | os.PathLike[str]], roots: Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    """The files behind `paths`, each checked to lie under one of `roots`; raises DataError otherwise.

    Every path is `~`-expanded, then resolved (`os.path.realpath`: symlinks and `..`, relative paths
    against the working directory, as the roots). What is checked, in this order, so that nothing
    outside the roots is read, listed or even stat-ed beyond what resolving a path needs:

    - a plain path or folder: the path itself, before it is looked at;
    - a glob: the folder before its first wildcard, before it is listed; a `..` after a wildcard is
      refused (it could climb out of the folder that was checked);
    - then every file the path, glob or folder expands to (a file inside a root may be a symlink to
      one outside; a folder may hold such a symlink): one file outside refuses the whole request.

    A refusal is one line, `PATH: outside the allowed data folders (RFM_DATA_ROOTS: ...)`, naming the
    path as typed and the configured roots, never a symlink's target or any content. A path inside a
    root that does not exist gets the usual `no such file or folder` error (outside a root, the
    refusal comes first, so whether a file exists there is not revealed). The returned paths are the
    resolved ones, so what is read is what was checked.

    Who is confined: the dashboard's "Local path" source, typed by a visitor. Not confined, on
    purpose: the operator-configured default data (`settings.data`, RFM_DATA) and the demo log
    (`settings.demo_data`), which whoever runs the server chose; uploads, which are written by the
    dashboard into its own upload folder; and the `rfm` command line, a local user's own tool reading
    with that user's own permissions.
    """
    resolved_roots = tuple(_real(root) for root in roots)
    files: list[str] = []
    for raw in paths:
        typed = os.fspath(raw)
        if "\0" in typed:
            raise DataError(f"{short_repr(typed)}: not a valid path")
        path = os.path.expanduser(typed)
        if glob.has_magic(path):
            prefix, rest = _split_pattern(path)
            if not _inside(_real(prefix), resolved_roots) or ".." in rest:
                raise _outside(typed, roots)
        elif not _inside(_real(path), resolved_roots):
            raise _outside(typed, roots)
        for file in expand_paths([path]):
            real = _real(file)
            if not _inside(real, resolved_roots):
                raise _outside(typed, roots)
            files.append(real)
    return tuple(files)


def describe_roots(roots: Sequence[str | os.PathLike[str]]) -> str:
    """The roots as configured, for messages."""
    return ", ".join(os.fspath(r) for r in roots) or "none set"


def _outside(typed: str, roots: Sequence[str | os.PathLike[str]]) -> DataError:
    return DataError(f"{typed}: outside the allowed data folders ({ROOTS_SETTING}: {describe_roots(roots)})")


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def _inside(real: str, roots: tuple[str, ...]) -> bool:
    return any(Path(real).is_relative_to(root) for root in roots)


def _split_pattern(pattern: str) -> tuple[str, list[str]]:
    """A glob's folder before its first wildcard component, and the components from there on."""
    anchor, *parts = Path(pattern).parts if os.path.isabs(pattern) else ("", *Path(pattern).parts)
    for index, part in enumerate(parts):
        if glob.has_magic(part):
            return os.path.join(anchor, *parts[:index]) or os.curdir, parts[index:]
    return os.path.join(anchor, *parts) or os.curdir, []  # no wildcard component (e.g. in the anchor)
