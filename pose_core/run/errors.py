"""What an analysis raises when it cannot produce a result (the messages are meant for the user)."""

from __future__ import annotations


class AnalysisError(RuntimeError):
    """The analysis could not produce a result (the message is meant for the user)."""


class NoPersonError(AnalysisError):
    pass


class CannotTellError(AnalysisError):
    """exercise="auto" could not decide; `.recognition` has the reason and the top candidates."""

    def __init__(self, message: str, recognition, repeats: dict[str, int] | None = None):
        super().__init__(message)
        self.recognition = recognition
        self.repeats = repeats or {}  # complete reps in the recognised stretch, counted as each candidate

    def __reduce__(self):  # pickled with its recognition (a Dask worker raises it to the caller)
        return (type(self), (self.args[0], self.recognition, self.repeats))

