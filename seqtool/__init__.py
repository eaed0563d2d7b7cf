"""seqtool: hands-on sequence-model experiments from the command line."""

__version__ = "0.1.0"
