"""The io stage: readers (deal files → deals), executors, and writers (records → a stream).

This package's ``__init__`` stays free of imports so that the plugin manager can key plugin
readers with :func:`suffix_key` without loading the readers (or YAML) themselves.
"""

from __future__ import annotations

__all__ = ["DEFAULT_DEAL_TIMEOUT", "DEFAULT_WORKER_MEMORY", "suffix_key"]

#: Seconds one deal may take in a worker before it is stopped (``--deal-timeout``).
DEFAULT_DEAL_TIMEOUT = 10.0
#: MiB a worker may map beyond what it holds when it starts (``--worker-memory``).
DEFAULT_WORKER_MEMORY = 2048


def suffix_key(suffix: str) -> str:
    """The key of a reader: ``"JSON"``, ``"json"`` and ``".json"`` all name the ``.json`` reader.

    Built-in and plugin readers (``dealdesk_readers``) are keyed alike.
    """
    suffix = suffix.lower()
    return suffix if suffix.startswith(".") else f".{suffix}"
