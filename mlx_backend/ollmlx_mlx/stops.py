"""Text-level stop strings with hold-back (Ollama semantics).

Owns one job: given decoded text segments, emit only text that can no longer turn into a stop
string, and report when a stop string has appeared. Matching is on text, not token ids, so a stop
string split across tokens (or tokenized differently from ``encode(stop)``) is still caught. The
stop string itself and everything after it are never emitted. Pure Python, no MLX.
"""

from __future__ import annotations


class StopMatcher:
    """Feed decoded segments in order; ``feed`` returns ``(text_to_emit, stopped)``."""

    def __init__(self, stops: tuple[str, ...] | list[str]):
        self._stops = [s for s in stops if s]  # an empty stop string would match everywhere
        self._held = ""
        self.matched: str | None = None  # the stop string that ended the text, once one has

    def feed(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        buf = self._held + text
        hits = [(i, s) for s in self._stops if (i := buf.find(s)) >= 0]
        if hits:
            at, self.matched = min(hits)
            self._held = ""
            return buf[:at], True
        keep = self._partial_suffix(buf)
        self._held = buf[len(buf) - keep :]
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        """The held-back text, released at the end of a sequence that did not hit a stop."""
        held, self._held = self._held, ""
        return held

    def _partial_suffix(self, buf: str) -> int:
        """Length of the longest suffix of ``buf`` that is a proper prefix of some stop string."""
        longest = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(buf)), longest, -1):
                if buf.endswith(stop[:n]):
                    longest = n
                    break
        return longest
