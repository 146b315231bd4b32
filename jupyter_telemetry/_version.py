__version__ = "0.2.0"
#: as jupyter-telemetry 0.1.0 had it: the release as a tuple of ints
version_info = tuple(int(part) for part in __version__.split("."))
