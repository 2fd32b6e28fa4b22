"""User-facing errors, at the bottom of the house so that every layer can raise them.

A `UserError` names the thing that is wrong and the fix. The CLI prints one as a single line and
exits with status 2; the console shows it in one line. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad input, missing file); never a bug."""

    exit_code = 2


class LedgerError(UserError):
    """A ledger or lab problem the user can fix: the message names the file or run and the fix."""
