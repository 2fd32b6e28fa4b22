"""The ledger's one user-facing error type."""

from __future__ import annotations

from engine.errors import UserError


class LedgerError(UserError):
    """A ledger or lab problem the user can fix: the message names the file or run and the fix."""
