import os
import pathlib
import warnings

import pytensor
import pytest

pytensor.config.floatX = "float64"  # the physics is checked to 1e-8; float32 would hide errors
warnings.filterwarnings("ignore", message=".*BLAS.*")
# the suite compiles many small model structures once each: their sampler callbacks compile in this process, not
# in a child each (tests/test_nutpie_numba.py checks the child path in processes of its own)
os.environ.setdefault("BAYESGAIN_CALLBACKS_IN_PROCESS", "1")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BATCH_A = ROOT / "data" / "synthetic-batch-a"
TINY = ROOT / "tests" / "fixtures" / "tiny_experiment"  # the small valid experiment folder the io tests edit


@pytest.fixture
def rng():
    """A fresh generator per test: a test's data do not depend on which tests ran before it."""
    import numpy as np

    return np.random.default_rng(20261126)


@pytest.fixture(scope="session")
def real_data_dir():
    path = pathlib.Path(os.environ.get("BAYESGAIN_REAL_DATA", SHARED / "real-data"))
    if not path.is_dir():
        pytest.skip(f"real instrument files not found at {path} (shared/real-data is absent)")
    return path


@pytest.fixture(scope="session")
def batch_a():
    """The shipped SYNTHETIC batch-A experiment, loaded once for the whole session."""
    from bayesgain.io import load_experiment

    return load_experiment(BATCH_A)


@pytest.fixture(scope="session")
def batch_a_corrected(batch_a):
    """Batch A film TA after the eq. S33 reflection correction (shared by preprocess and classic tests)."""
    from bayesgain import preprocess

    return preprocess.reflection_correct_film(batch_a)


@pytest.fixture(scope="module")
def tiny_tree():
    """tests/fixtures/tiny_experiment loaded once per test module (a module's tests may not change it)."""
    from bayesgain.io import load_experiment

    return load_experiment(TINY)


@pytest.fixture
def folder(tmp_path):
    """A fresh copy of tests/fixtures/tiny_experiment that a test may edit."""
    import shutil

    dst = tmp_path / "exp"
    shutil.copytree(TINY, dst)
    return dst
