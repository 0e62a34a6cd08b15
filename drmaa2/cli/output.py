"""What the commands print: aligned tables, JSON, durations and sizes, the progress line."""

from __future__ import annotations

import collections
import datetime
import json
import math
import shutil
from collections.abc import Sequence
from typing import TextIO

import drmaa2

# A command line may hold newlines and tabs: one table row stays one line.
_CONTROL_CHARACTERS = dict.fromkeys([*range(32), 127], " ")


def duration(value: datetime.timedelta | None, *, millis: bool = True) -> str:
    """``H:MM:SS.mmm`` (``H:MM:SS`` without ``millis``; "-" for None)."""
    if value is None:
        return "-"
    total_ms = round(value.total_seconds() * 1000)
    seconds, ms = divmod(total_ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{ms:03d}" if millis else text


def size(kib: float | None) -> str:
    """A size given in KiB, human-readable with binary units ("-" for None)."""
    if kib is None:
        return "-"
    value, unit = float(kib), "K"
    for bigger in "MGT":
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f}{unit}" if unit == "K" or value >= 100 else f"{value:.1f}{unit}"


def number(text: str | None) -> float | None:
    """The finite number a backend's text holds, else None."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def table(
    out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> None:
    """Print aligned columns (those listed in ``right`` right-aligned), cut to a terminal."""
    rows = [[cell.translate(_CONTROL_CHARACTERS) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    limit = shutil.get_terminal_size().columns if out.isatty() else None
    for row in (headers, *rows):
        cells = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        line = "  ".join(cells).rstrip()
        out.write((line[:limit] if limit else line) + "\n")


def print_json(out: TextIO, data: object) -> None:
    """Print one indented JSON document, a piece at a time: a reader that stops reading
    (``drmaa2 jobs --json | head -1``) is then a BrokenPipeError, never output cut short
    in silence (one large write that the pipe takes only part of can end so in CPython)."""
    text = json.dumps(data, indent=2) + "\n"
    for start in range(0, len(text), _PIECE):
        out.write(text[start : start + _PIECE])
        out.flush()


#: The size of the pieces :func:`print_json` writes (characters).
_PIECE = 1 << 16


class ProgressLine:
    """A line redrawn in place on a terminal: done / failed / running / queued, elapsed, rate."""

    def __init__(self, out: TextIO, label: str) -> None:
        self._out = out
        self._label = label
        self._width = 0

    def update(
        self,
        done: int,
        failed: int,
        unfinished: collections.Counter[drmaa2.JobState],
        elapsed: float,
    ) -> None:
        """Redraw the line with these counts (``unfinished``: of the other jobs, by state),
        ``elapsed`` seconds after the wait began. Suspended and held jobs are counted apart,
        when there are any."""
        state = drmaa2.JobState
        running = unfinished[state.RUNNING]
        suspended = unfinished[state.SUSPENDED]
        held = unfinished[state.QUEUED_HELD] + unfinished[state.REQUEUED_HELD]
        queued = sum(unfinished.values()) - running - suspended - held
        rate = (done + failed) / elapsed if elapsed > 0 else 0.0
        since = (
            f"{elapsed:.1f}s"
            if elapsed < 60
            else duration(datetime.timedelta(seconds=elapsed), millis=False)
        )
        text = (
            f"{self._label}: {done} done, {failed} failed, {running} running, {queued} queued"
            + (f", {suspended} suspended" if suspended else "")
            + (f", {held} held" if held else "")
            + f" | {since} elapsed | {rate:.1f} tasks/s"
        )
        self._out.write("\r" + text.ljust(self._width))
        self._out.flush()
        self._width = len(text)

    def finish(self) -> None:
        """End the line (if one was drawn), so that what follows starts on a line of its own."""
        if self._width:
            self._out.write("\n")
            self._out.flush()
            self._width = 0
