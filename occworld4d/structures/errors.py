"""The data errors every reader raises (datasets, info files, sensors, tools)."""


class DataFormatError(ValueError):
    """A data file is missing, truncated or not in the expected format (names the file)."""
