"""The sampling transform of V_C: an exact bijection with the right Jacobian; the model density is unchanged."""

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayesgain.model.transforms import ScaledSoftplus


def test_scaled_softplus_round_trip_and_jacobian_against_finite_differences():
    tr = ScaledSoftplus(1e-3)
    y = pt.dvector("y")
    x = pt.dvector("x")
    back = pytensor.function([y], tr.backward(y), mode="FAST_COMPILE")
    fwd = pytensor.function([x], tr.forward(x), mode="FAST_COMPILE")
    jac = pytensor.function([y], tr.log_jac_det(y), mode="FAST_COMPILE")
    ys = np.array([-30.0, -3.0, -0.2, 0.0, 0.7, 5.0, 19.9, 20.1, 80.0])
    xs = back(ys)
    assert np.all(xs > 0)
    np.testing.assert_allclose(fwd(xs), ys, rtol=1e-9, atol=1e-9)
    # written straight from the definition: x = s log(1 + e^y)
    np.testing.assert_allclose(xs, 1e-3 * np.array([math.log1p(math.exp(v)) for v in ys]), rtol=1e-12)
    h = 1e-6
    fd = (back(ys + h) - back(ys - h)) / (2 * h)
    np.testing.assert_allclose(jac(ys), np.log(fd), rtol=1e-6, atol=1e-6)
    # linear far above the scale (the point of the transform), logarithmic far below
    assert back(np.array([50.0]))[0] == pytest.approx(0.05, rel=1e-12)
    assert math.log(back(np.array([-20.0]))[0] / 1e-3) == pytest.approx(-20.0, abs=1e-8)


def test_scaled_softplus_rejects_a_non_positive_scale():
    with pytest.raises(ValueError, match="scale must be positive"):
        ScaledSoftplus(0.0)


def test_V_C_transform_changes_only_the_sampling_coordinate(batch_a):
    """sec-only with V_C on log and on softplus: the same log density at the same V_C (no Jacobian terms)."""
    import dataclasses

    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import load_spec

    spec = load_spec("sec-only")
    lps, names = {}, {}
    for form in ("log", "softplus"):
        s = dataclasses.replace(spec, options={**spec.options, "charging_energy_transform": form})
        gm = GainModel(s, batch_a, names=["batch-a"])
        m = gm.build()
        ip = m.initial_point()
        vc_name = next(k for k in ip if k.startswith("V_C_V"))
        names[form] = vc_name
        vc = 0.0062
        ip[vc_name] = np.full_like(ip[vc_name], math.log(vc) if form == "log" else math.log(math.expm1(vc / 1e-3)))
        lps[form] = m.compile_logp(jacobian=False, mode="FAST_COMPILE")(ip)
    assert names["log"] == "V_C_V_log__" and names["softplus"] == "V_C_V_softplus__"
    assert lps["log"] == pytest.approx(lps["softplus"], abs=1e-9)
