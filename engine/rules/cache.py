"""What dealdesk remembers between runs about the ruleset texts it has read.

Every command reads, parses and checks the rulesets anew; what follows from a text alone is
remembered in a cache folder, as black remembers formatted files: that a text passed the schema,
a text's parsed YAML document, that a message compiles. An entry is keyed by a SHA-256 of the
text and of everything else the result depends on (dealdesk's version, the code and libraries
that make it, by file stamp), so an edit or an upgrade is a miss, never a stale hit.

Entries are JSON or empty marker files: nothing read back is executed or unpickled. A missing,
unreadable or malformed entry is a miss; one that cannot be written costs the work next time.
An entry stands in for a text's checks, so it is read only when nobody but this user could have
written it: the entry, its folder and the cache folder must be the user's own and writable by
nobody else (dealdesk makes them so); a shared or loosened cache folder is a miss every time.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "cache_dir",
    "digest",
    "file_stamp",
    "is_marked",
    "mark",
    "module_stamp",
    "read",
    "write",
]


def cache_dir() -> Path | None:
    """The cache folder: ``$DEALDESK_CACHE_DIR`` (empty: remember nothing), else
    ``$XDG_CACHE_HOME/dealdesk`` or ``~/.cache/dealdesk``."""
    chosen = os.environ.get("DEALDESK_CACHE_DIR")
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dealdesk"


def digest(*parts: str) -> str:
    """The key of an entry: a SHA-256 of dealdesk's version and ``parts``."""
    import hashlib

    from dealdesk import __version__

    sha = hashlib.sha256(__version__.encode())
    for part in parts:
        sha.update(b"\0" + part.encode("utf-8", "surrogatepass"))
    return sha.hexdigest()


def file_stamp(path: str | Path) -> str:
    """A file's modification time and size: what changes when it is edited or reinstalled."""
    try:
        stat = os.stat(path)
    except OSError:
        return f"{path}:?"
    return f"{path}:{stat.st_mtime_ns}:{stat.st_size}"


@cache
def module_stamp(name: str) -> str:
    """The :func:`file_stamp` of module or package ``name`` (its ``__init__``), without
    importing it."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is None:
        import importlib.util

        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
    return file_stamp(origin) if origin else f"{name}:?"


def _entry(kind: str, key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / kind / key


def _private(path: Path, *, file: bool = False) -> bool:
    """Whether only this user can have written ``path``: it is ours and nobody else may write
    it (always true where there are no user ids)."""
    try:
        status = os.stat(path)
    except OSError:
        return False
    if file and not stat.S_ISREG(status.st_mode):
        return False
    if not hasattr(os, "getuid"):
        return True
    return status.st_uid == os.getuid() and not status.st_mode & 0o022


def _trusted(entry: Path) -> bool:
    """An entry is read only when it, its kind's folder and the cache folder are private: an
    entry stands in for a ruleset's text, so nobody else may be able to plant one."""
    return _private(entry, file=True) and _private(entry.parent) and _private(entry.parent.parent)


def _folder(entry: Path) -> None:
    """Make the entry's folders, private to this user."""
    for folder in (entry.parent.parent, entry.parent):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def read(kind: str, key: str) -> Any | None:
    """The JSON value remembered under ``kind``/``key``, or None (also when it cannot be read,
    or someone else could have written it)."""
    entry = _entry(kind, key)
    if entry is None or not _trusted(entry):
        return None
    try:
        with open(entry, "rb") as file:
            return json.loads(file.read())
    except (OSError, ValueError, RecursionError):
        return None


def write(kind: str, key: str, value: Any) -> None:
    """Remember ``value`` as JSON under ``kind``/``key``; nothing when it cannot be written."""
    entry = _entry(kind, key)
    if entry is None:
        return
    try:
        data = json.dumps(value, separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError):  # not JSON (bytes from !!binary): not kept
        return
    temporary = entry.with_name(f".{entry.name}.{os.getpid()}")
    try:
        _folder(entry)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, entry)  # whole or not at all, whoever else writes it
    except OSError:  # a read-only home costs the work next time, nothing else
        try:
            temporary.unlink()
        except OSError:
            pass


def is_marked(kind: str, key: str) -> bool:
    """Whether :func:`mark` was called with ``kind`` and ``key``."""
    entry = _entry(kind, key)
    return entry is not None and _trusted(entry)


def mark(kind: str, key: str) -> None:
    """Remember that ``key`` holds (an empty file); nothing when it cannot be written."""
    entry = _entry(kind, key)
    if entry is None:
        return
    try:
        _folder(entry)
        os.close(os.open(entry, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        pass
