"""Exception types. Every error raised for bad user input says where (file, line, part) and what."""


class FewshotError(ValueError):
    """Base class for errors caused by bad input to fewshot."""


class DataError(FewshotError):
    """A data file or in-memory dataset is malformed (wrong columns, empty text, unknown label)."""


class LabelFileError(FewshotError):
    """A label file (``label`` or ``label==word`` lines) is malformed."""


class TemplateError(FewshotError):
    """A prompt template string cannot be parsed or does not fit the sequence length."""


class BundleError(FewshotError):
    """A saved classifier directory or an exported bundle is missing files or is corrupt."""


class WriteError(FewshotError, OSError):
    """An output could not be written (disk full, permission denied); the previous output is unchanged.

    Also an ``OSError``, which it is: callers that handle write failures as such keep working."""
