"""User-facing errors: one clear line, no traceback.

Everything the user can get wrong (a file, a column, a value, a model version) raises `RfmError`
with a message naming the file, column, row and an example of the bad value. The CLI turns it into
exit code 2, the dashboard into one error box, the server into a 4xx response.
"""


class RfmError(Exception):
    """A problem with the user's input, explained in one line."""


class DataError(RfmError):
    """The transaction log cannot be read or does not hold what is expected."""


class ModelError(RfmError):
    """A model version is missing, corrupted, tampered with or cannot be trained."""


class ScoringError(RfmError):
    """A scoring request failed: the input, the model server, or the SageMaker endpoint (one line)."""


def short_repr(value: object, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters, for quoting a bad value inside a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a library's own errors can run to many), or its type."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
