"""User-facing errors: each names the thing that is wrong and the fix.

The CLI prints one of these as a single line and exits with status 2; anything else is a bug
and keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix (bad input, missing file); never a bug."""

    exit_code = 2
