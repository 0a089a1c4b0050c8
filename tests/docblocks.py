"""Reading the fenced blocks of a Markdown doc, for the tests that run the docs' examples.

A block may be labelled by an HTML comment on the last non-blank line before its fence, which a
reader of the rendered page does not see: ``<!-- file: PATH -->`` (the block is that file),
``<!-- example -->`` and the like. What a label means is up to the test that reads the doc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"```(\w*)\s*")
_LABEL = re.compile(r"<!--\s*([\w-]+)(?::\s*(.*?))?\s*-->")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # of the opening fence, 1-based
    label: str | None  # the label's name: "file" for <!-- file: PATH -->
    value: str | None  # the label's value: PATH for <!-- file: PATH -->

    @property
    def file(self) -> str | None:
        """The path of a ``<!-- file: PATH -->`` block."""
        return self.value if self.label == "file" else None


def blocks(markdown: str) -> list[Block]:
    """Every fenced block of ``markdown``, in order, with its label."""
    found: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.fullmatch(lines[index])
        if opening is None:
            index += 1
            continue
        end = lines.index("```", index + 1)
        before = [line for line in lines[:index] if line.strip()][-1:]
        label = _LABEL.fullmatch(before[0].strip()) if before else None
        found.append(
            Block(
                opening.group(1),
                "\n".join(lines[index + 1 : end]) + "\n",
                index + 1,
                label.group(1) if label else None,
                label.group(2) if label else None,
            )
        )
        index = end + 1
    return found
