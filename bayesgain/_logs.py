"""Keep PyMC's and PyTensor's informational log lines out of bayesgain's command output."""

import contextlib
import logging


@contextlib.contextmanager
def quiet_pymc(names=("pymc", "pytensor")):
    """Raise the PyMC and PyTensor loggers to WARNING inside the block, then restore their levels.

    Predictive sampling logs "Sampling: [...]" at INFO, which lands in the middle of a report's output;
    warnings and errors still show, and progress bars (not log records) are untouched.
    """
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
