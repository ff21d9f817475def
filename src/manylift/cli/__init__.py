"""Command-line interface (``manylift --help``)."""
