"""PyMC's informational log lines ("Sampling: [...]") stay out of the commands' output; warnings do not."""

import logging
import pathlib

import pytest

from bayesgain._logs import quiet_pymc

TINY = pathlib.Path(__file__).resolve().parent / "fixtures" / "tiny_experiment"


@pytest.fixture(scope="module")
def sec_model():
    from bayesgain.model.core import GainModel

    gm = GainModel("sec-only", TINY)
    gm.build()
    return gm


def _sampling_lines(caplog):
    return [r for r in caplog.records if r.name.startswith("pymc") and "Sampling" in r.getMessage()]


def test_predictive_draws_log_no_sampling_line(sec_model, caplog):
    import pymc as pm

    caplog.set_level(logging.INFO, logger="pymc")
    with sec_model.model:  # PyMC itself logs the line at INFO: the capture sees it
        pm.sample_prior_predictive(draws=2, random_seed=0, var_names=["V_1S_V"])
    assert _sampling_lines(caplog)
    caplog.clear()
    sec_model.sample_prior_predictive(draws=2, seed=0, var_names=["V_1S_V"])
    assert not _sampling_lines(caplog)
    assert logging.getLogger("pymc").level == logging.INFO  # restored after the block


def test_warnings_still_pass_and_levels_are_restored(caplog):
    caplog.set_level(logging.DEBUG, logger="pytensor")
    with quiet_pymc():
        logging.getLogger("pytensor.x").info("hidden")
        logging.getLogger("pytensor.x").warning("shown")
    assert [r.getMessage() for r in caplog.records] == ["shown"]
    assert logging.getLogger("pytensor").level == logging.DEBUG
