"""Ctrl-C: every command stops with "interrupted" and exit status 130, leaving no temporaries.

Some libraries swallow the KeyboardInterrupt (nutpie returns the draws so far) or wrap it (a
SystemError out of compiled code); the SIGINT handler therefore also records that it fired, and
:func:`raise_if_interrupted` turns a swallowed interrupt back into one before anything is written.
"""

from __future__ import annotations

import contextlib
import signal
import threading

EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


class Interrupted(KeyboardInterrupt):
    """The user pressed Ctrl-C (or the process got SIGINT)."""


class _State:
    hit = False


_state = _State()


def _on_sigint(signum, frame):
    _state.hit = True
    raise Interrupted()


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` when a SIGINT arrived, even if a library swallowed it."""
    if _state.hit:
        raise Interrupted()


def is_interrupt(exc: BaseException | None) -> bool:
    """Did ``exc`` (or an exception it was raised from) come from Ctrl-C?"""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return _state.hit


@contextlib.contextmanager
def interruptible():
    """Install the recording SIGINT handler for the duration (main thread only); yields the state."""
    _state.hit = False
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_sigint) if main else None
    try:
        yield _state
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
