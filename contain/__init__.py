"""contain: a container engine and OCI runtime in pure standard-library Python."""

__version__ = "0.9.0"
