"""Errors the wearer or developer can act on, each with its exit code.

Every command catches `GlassesError` at the top and prints its message on one line,
with no traceback, then exits with `exit_code`. The codes are documented in the README:

    0 ok, 1 internal error, 2 usage, 3 bad input file, 4 model store, 5 device failure,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM)
"""


class GlassesError(Exception):
    """Base class: a one-line message naming what is wrong and where."""

    exit_code = 1


class BadInput(GlassesError):
    """A file or argument that cannot be used: truncated, wrong format, corrupt."""

    exit_code = 3


class StoreError(GlassesError):
    """The model store is missing, unprepared, incomplete or tampered with."""

    exit_code = 4


class DeviceFailure(GlassesError):
    """A camera, microphone or display that failed or vanished."""

    exit_code = 5


class DeviceGone(DeviceFailure):
    """A device that went away and may come back (unplugged, a folder of stills moved away,
    a read that failed): its source tries to open it again for a while before giving up."""
