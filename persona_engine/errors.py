"""The package's exceptions: one root, narrow subclasses, messages a marketer can act on."""

from __future__ import annotations


class PersonaStudioError(Exception):
    """Root of every error persona_engine raises on purpose."""


class StoreError(PersonaStudioError):
    """The database could not be opened, migrated or queried."""


class StoreLockedError(StoreError):
    """Another process holds the database file for writing."""


class MigrationError(StoreError):
    """A schema migration failed; the database was left as it was before it."""


class ValidationError(PersonaStudioError):
    """Input (a file, a field, a parameter) does not have the expected shape."""


class ImportRejected(ValidationError):
    """An import was refused; the database is unchanged."""


class NotFoundError(PersonaStudioError):
    """A persona, action, run or customer id does not exist."""


class PermissionDenied(PersonaStudioError):
    """The user's role does not allow this operation."""


class NoDataError(PersonaStudioError):
    """The shop lacks the data a computation needs (no sessions, no orders...)."""
