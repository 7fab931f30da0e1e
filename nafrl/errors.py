"""The exceptions nafrl raises for user errors: one hierarchy, one line each.

Every error a user can fix (a bad option, an unusable environment, a corrupt checkpoint, a
run that diverged, a missing system library, a full disk) is a :class:`NafrlError`. Its
message is one line that names what is wrong and what is accepted. The command line prints
it as ``nafrl: error: <message>`` and exits with status 2; anything else is a bug and
shows a traceback. ``nafrl --debug ...`` shows the traceback of user errors too.
"""

from __future__ import annotations


class NafrlError(Exception):
    """Base of every user-facing error; catch this to handle all of them."""


class ConfigError(NafrlError, ValueError):
    """An invalid configuration value; the message names the field and what is accepted."""


class EnvError(NafrlError, ValueError):
    """An environment the agents cannot use, or one that returned unusable data."""


class CheckpointError(NafrlError, ValueError):
    """A file that is not a readable nafrl checkpoint, or a checkpoint that must not be
    written (non-finite arrays, a target that is not a regular file)."""


class RunFolderError(NafrlError, ValueError):
    """A run folder whose files are missing, corrupt or lack required keys."""


class TrainingDivergedError(NafrlError, RuntimeError):
    """Training produced non-finite losses or parameters; no checkpoint was written from
    the diverged state."""


class RenderingUnavailableError(NafrlError, RuntimeError):
    """Rendering was asked for but no off-screen OpenGL library is present."""


class StorageError(NafrlError, OSError):
    """A file could not be written or read (read-only folder, full disk, permissions)."""


__all__ = [
    "CheckpointError",
    "ConfigError",
    "EnvError",
    "NafrlError",
    "RenderingUnavailableError",
    "RunFolderError",
    "StorageError",
    "TrainingDivergedError",
]
