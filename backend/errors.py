"""Exceptions that map to the CLI's exit codes (DESIGN.md: 2 bad input, 3 cancelled)."""

from __future__ import annotations


class BadInput(Exception):
    """The user's input cannot be processed; the message says what and how to fix it (exit 2)."""


class Cancelled(BaseException):
    """The run was cancelled through stdin, SIGINT or SIGTERM (exit 3).

    A BaseException, like KeyboardInterrupt: handlers of ``Exception`` (a bad file, a failed clip) must
    not swallow a cancel request."""
