"""The NumPy face of the physics: compiled PyTensor graphs on NumPy arrays, with argument checks.

Every function here wraps the PyTensor function of the same idea (``transitions``, ``charging``,
``auger``, ``ensemble``, ``optics``), so models and notebooks run the same code.  Inputs broadcast
over leading axes; the trailing axis of ``charge_fractions`` is n = 0..g_e.  Graphs are compiled
once per static setting (degeneracies, quadrature nodes) and cached for the process.
"""

import functools

import numpy as np
import pytensor
import pytensor.tensor as pt

from . import auger, charging, ensemble, optics, transitions
from .constants import BOLTZMANN_EV_PER_K
from .poisson import DEFAULT_TAIL, required_n_max, truncated_tail

__all__ = [
    "ensemble_table",
    "threshold_on_table",
    "charged_exciton_ensemble_table",
    "band_edge_absorption",
    "ensemble_absorption",
    "gain_threshold",
    "charge_fractions",
    "mean_electrons",
    "charge_fractions_uniform",
    "auger_rate",
    "cascade_absorption",
    "state_populations",
    "gain_lifetime",
    "reflection_correct",
    "single_wavelength_threshold",
    "threshold_versus_doping",
    "depth_averaged_fluence",
    "pump_depth_profile",
    "bleach_saturation",
    "fluence_to_energy_density_nJ_cm2",
    "energy_density_nJ_cm2_to_fluence",
    "gain_coefficient_per_cm",
    "effective_temperature_K",
]

FRACTION_TOLERANCE = 1e-6


# ----------------------------------------------------------------------------- checks
def _array(x, name):
    a = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite; got {np.count_nonzero(~np.isfinite(a))} NaN/inf value(s)")
    return a


def _nonnegative(x, name, unit):
    a = _array(x, name)
    if np.any(a < 0):
        raise ValueError(f"{name} must be >= 0 ({unit}); got minimum {a.min()!r}")
    return a


def _positive(x, name, unit):
    a = _array(x, name)
    if np.any(a <= 0):
        raise ValueError(f"{name} must be > 0 ({unit}); got minimum {a.min()!r}")
    return a


def _degeneracies(g_e, g_h):
    for name, g in (("g_e", g_e), ("g_h", g_h)):
        if int(g) != g or g < 1:
            raise ValueError(f"{name} must be a positive integer (a level degeneracy); got {g!r}")
    return int(g_e), int(g_h)


def _fractions(f, g_e, name="charge_fractions"):
    a = _array(f, name)
    if a.ndim == 0 or a.shape[-1] != g_e + 1:
        raise ValueError(
            f"{name} must have a last axis of length g_e + 1 = {g_e + 1} (n = 0..g_e); got shape {a.shape}"
        )
    if np.any(a < -FRACTION_TOLERANCE) or np.any(a > 1 + FRACTION_TOLERANCE):
        raise ValueError(f"{name} must lie in [0, 1]; got range [{a.min()!r}, {a.max()!r}]")
    total = a.sum(axis=-1)
    worst = np.max(np.abs(total - 1.0))
    if worst > FRACTION_TOLERANCE:
        raise ValueError(f"{name} must sum to 1 over its last axis (n); worst sum is off by {worst:.3g}")
    return a


def _n_max(mean_excitons, n_max):
    needed = required_n_max(mean_excitons)
    if n_max is None:
        return needed
    n_max = int(n_max)
    tail = float(np.max(truncated_tail(mean_excitons, n_max), initial=0.0))
    if tail >= DEFAULT_TAIL:
        raise ValueError(
            f"n_max={n_max} is too small for mean_excitons up to {np.max(mean_excitons):.4g}: it drops Poisson "
            f"weight {tail:.2g} (>= {DEFAULT_TAIL:g}); use n_max >= {needed}"
        )
    return n_max


def _flat(*arrays):
    """Broadcast arrays against each other and flatten to 1-D; return (flats, batch_shape)."""
    b = np.broadcast_arrays(*arrays)
    return [np.ascontiguousarray(x).reshape(-1) for x in b], b[0].shape


# values one block of a NumPy-side evaluation holds (elements x quadrature nodes): its temporaries stay in the CPU's
# caches; the report's <n_e>(V) band (1000 draws x 131 potentials x 64 nodes) took 5.1 s whole, 0.34 s in blocks
_BLOCK_VALUES = 1 << 19


def _in_blocks(fn, *flats, per_element=1):
    """``fn`` of 1-D ``flats`` evaluated on blocks of their elements, joined (elementwise graphs: the same values)."""
    step = max(1, _BLOCK_VALUES // max(1, int(per_element)))
    n = flats[0].size
    if n <= step:
        return fn(*flats)
    return np.concatenate([fn(*(x[i:i + step] for x in flats)) for i in range(0, n, step)])


def _flat_with_fractions(batch_arrays, fractions):
    """Broadcast batch arrays with the leading axes of ``fractions`` (..., S); flatten."""
    S = fractions.shape[-1]
    shape = np.broadcast_shapes(*(a.shape for a in batch_arrays), fractions.shape[:-1])
    flats = [np.broadcast_to(a, shape).reshape(-1) for a in batch_arrays]
    f = np.broadcast_to(fractions, shape + (S,)).reshape(-1, S)
    return flats, f, shape


# ----------------------------------------------------------------------------- compiled graphs
def numpy_mode():
    """The PyTensor mode of every NumPy-side evaluation (this module, posterior quantities, predictive draws).

    PyTensor's default here is numba, whose cold compilation of a cascade graph takes minutes (the
    report's gain-lifetime curves: 187 s cold, measured on the 2-core machine) for calls that are few
    and vectorised over whole arrays.  So these graphs run on PyTensor's Python VM with the fast_run
    rewrites but no elementwise fusion (a fused Composite would loop per element in Python): compiled
    in a second, each op a NumPy call (the same lifetimes: 17.7 s in all).  Integer powers stay NumPy's power:
    PyTensor's nested squaring makes x**4 a Composite, which this VM evaluates one element at a time (the report's
    posterior predictive and residual check spent most of their time there).  Sampling keeps numba.
    ``BAYESGAIN_PYTENSOR_MODE=NUMBA`` (or any PyTensor mode name) overrides it.
    """
    import os

    name = os.environ.get("BAYESGAIN_PYTENSOR_MODE")
    if name:
        return name
    global _NUMPY_MODE
    if _NUMPY_MODE is None:
        from pytensor.compile.mode import Mode
        from pytensor.graph.rewriting.db import RewriteDatabaseQuery
        from pytensor.link.vm import VMLinker

        _NUMPY_MODE = Mode(VMLinker(use_cloop=False, c_thunks=False),
                           RewriteDatabaseQuery(include=["fast_run"], exclude=["fusion", "cxx_only", "BlasOpt",
                                                                                "inplace", "local_pow_to_nested_squaring"]))
    return _NUMPY_MODE


_NUMPY_MODE = None


def _function(inputs, output):
    return pytensor.function(inputs, output, on_unused_input="ignore", mode=numpy_mode())


@functools.lru_cache(maxsize=None)
def _band_edge_fn(g_e, g_h):
    N, n = pt.dvector("N"), pt.dvector("n_echem")
    return _function([N, n], transitions.band_edge_absorption(N, n, g_e, g_h))


@functools.lru_cache(maxsize=None)
def _ensemble_fn(g_e, g_h):
    mean, f, n_max = pt.dvector("mean_excitons"), pt.dmatrix("charge_fractions"), pt.lscalar("n_max")
    table = transitions.transition_table(n_max, g_e, g_h)
    return _function([mean, f, n_max], ensemble.ensemble_absorption(mean, f, table))


@functools.lru_cache(maxsize=None)
def _threshold_fn(g_e, g_h, n_max):
    f, level = pt.dmatrix("charge_fractions"), pt.dvector("level")
    table = transitions.transition_table(n_max, g_e, g_h)
    upper = ensemble.threshold_bracket(g_e, g_h)
    return _function([f, level], ensemble.solve_threshold(f, table, level, upper=upper))


@functools.lru_cache(maxsize=None)
def _fractions_fn(g_e, n_nodes, half_width):
    V, V1, Vc, s, T = (pt.dvector(n) for n in ("potential_V", "V_1S", "V_C", "sigma_1S", "temperature_K"))
    out = charging.charge_fractions_disordered(V, V1, Vc, s, T, g_e, n_nodes, half_width)
    return _function([V, V1, Vc, s, T], out)


@functools.lru_cache(maxsize=None)
def _plain_fractions_fn(g_e):
    V, V1, Vc, T = (pt.dvector(n) for n in ("potential_V", "V_1S", "V_C", "temperature_K"))
    return _function([V, V1, Vc, T], charging.charge_fractions(V, V1, Vc, T, g_e))


@functools.lru_cache(maxsize=None)
def _rate_fn():
    N, n, kxx, kx = (pt.dvector(x) for x in ("N", "n_echem", "k_xx", "k_x"))
    return _function([N, n, kxx, kx], auger.auger_rate(N, n, kxx, kx))


@functools.lru_cache(maxsize=None)
def _cascade_fn(g_e, g_h, per_element=False):
    """Delays shared by the batch (T,) or, with ``per_element``, one row per batch element (B, T)."""
    mean, f = pt.dvector("mean_excitons"), pt.dmatrix("charge_fractions")
    t = pt.dmatrix("delays_ps") if per_element else pt.dvector("delays_ps")
    kxx, kx, n_max = pt.dscalar("k_xx"), pt.dscalar("k_x"), pt.lscalar("n_max")
    rates = auger.rate_table(n_max, g_e, kxx, kx)
    table = transitions.transition_table(n_max, g_e, g_h)
    out = auger.cascade_absorption(mean, f, t, rates, table, n_saturated=max(g_e, g_h))
    return _function([mean, f, t, kxx, kx, n_max], out)


@functools.lru_cache(maxsize=None)
def _populations_fn():
    f0, k, t = pt.dvector("initial"), pt.dvector("rates"), pt.dvector("delays_ps")
    return _function([f0, k, t], auger.cascade_populations(f0, k, t))


@functools.lru_cache(maxsize=None)
def _elementwise_fn(name):
    builders = {
        "reflection_correct": (4, optics.reflection_correct),
        "depth_averaged_fluence": (2, optics.depth_averaged_fluence),
        "bleach_saturation": (2, optics.bleach_saturation),
        "fluence_to_energy_density_nJ_cm2": (2, optics.fluence_to_energy_density_nJ_cm2),
        "energy_density_nJ_cm2_to_fluence": (2, optics.energy_density_nJ_cm2_to_fluence),
        "gain_coefficient_per_cm": (2, optics.gain_coefficient_per_cm),
        "effective_temperature_K": (2, charging.effective_temperature_K),
    }
    n, build = builders[name]
    xs = [pt.dvector(f"x{i}") for i in range(n)]
    return _function(xs, build(*xs))


def _elementwise(name, *arrays):
    flats, shape = _flat(*arrays)
    return _elementwise_fn(name)(*flats).reshape(shape)


# ----------------------------------------------------------------------------- transition counting
def band_edge_absorption(N, n_echem, g_e=2, g_h=4):
    """A*(N, n_echem) of one QD in units of gamma (SI eq. S6; S4 at n_echem = 0)."""
    g_e, g_h = _degeneracies(g_e, g_h)
    N = _nonnegative(N, "N", "excitons per QD")
    n = _nonnegative(n_echem, "n_echem", "electrons per QD")
    if np.any(n > g_e):
        raise ValueError(f"n_echem must be <= g_e = {g_e} (the 1S(e) level holds g_e electrons); got {n.max()!r}")
    (Nf, nf), shape = _flat(N, n)
    return _band_edge_fn(g_e, g_h)(Nf, nf).reshape(shape)


def ensemble_absorption(mean_excitons, charge_fractions, g_e=2, g_h=4, n_max=None):
    """Band-edge absorption of a Poisson-excited ensemble with charge fractions, units of gamma (eq. S17)."""
    g_e, g_h = _degeneracies(g_e, g_h)
    mean = _nonnegative(mean_excitons, "mean_excitons", "excitons per QD")
    f = _fractions(charge_fractions, g_e)
    n_max = _n_max(mean, n_max)
    (m,), ff, shape = _flat_with_fractions([mean], f)
    return _ensemble_fn(g_e, g_h)(m, ff, n_max).reshape(shape)


def gain_threshold(charge_fractions, g_e=2, g_h=4, level=0.0):
    """<N_gain>: excitons/QD at which the ensemble band-edge absorption reaches ``level`` (0: transparency).

    0 where the unexcited ensemble is already at or below ``level``; inf where it is unreachable.
    """
    g_e, g_h = _degeneracies(g_e, g_h)
    f = _fractions(charge_fractions, g_e)
    level = _array(level, "level")
    (lv,), ff, shape = _flat_with_fractions([level], f)
    n_max = required_n_max(ensemble.threshold_bracket(g_e, g_h))
    return _threshold_fn(g_e, g_h, n_max)(ff, lv).reshape(shape)


def single_wavelength_threshold(charge_fractions, band_edge_absorbance_OD, thickness_nm, g_min_per_cm=50.0,
                                g_e=2, g_h=4):
    """Lowest <N> (excitons/QD) at which the gain coefficient at a wavelength reaches ``g_min_per_cm``.

    ``band_edge_absorbance_OD`` is the neutral film's band-edge (1S) absorbance at that wavelength,
    gamma_lambda g_e g_h; the band-edge absorbance of the excited film there is
    gamma_lambda A_ens(<N>, f).  So g >= g_min when A_ens <= -g_min d g_e g_h / (ln10 A0_lambda).
    Returns inf where the band edge cannot provide that much gain (a weak wing of the line).
    """
    A0 = _positive(band_edge_absorbance_OD, "band_edge_absorbance_OD", "OD")
    d = _positive(thickness_nm, "thickness_nm", "nm")
    g_min = _nonnegative(g_min_per_cm, "g_min_per_cm", "cm^-1")
    level = -g_min * (d * 1e-7) * g_e * g_h / (np.log(10.0) * A0)
    return gain_threshold(charge_fractions, g_e, g_h, level=level)


# ----------------------------------------------------------------------------- charging
def charge_fractions(potential_V, V_1S, V_C=0.0, sigma_1S=0.0, temperature_K=293.0, g_e=2,
                     n_nodes=charging.DEFAULT_QUADRATURE_NODES, half_width=charging.QUADRATURE_HALF_WIDTH):
    """Fractions f_0..f_{g_e} (last axis) of QDs with n electrons at ``potential_V`` (V).

    Grand-canonical statistics with the sign convention of docs/paper-conventions.md; ``sigma_1S`` (V) > 0 averages
    over Gaussian level disorder by trapezoid quadrature, ``n_nodes`` nodes on +-``half_width`` sigma
    (the models use fewer nodes on +-6 sigma); ``temperature_K`` may be an effective temperature.
    """
    g_e, _ = _degeneracies(g_e, 1)
    V = _array(potential_V, "potential_V")
    V1 = _array(V_1S, "V_1S")
    Vc = _array(V_C, "V_C")
    s = _nonnegative(sigma_1S, "sigma_1S", "V")
    T = _positive(temperature_K, "temperature_K", "K")
    (Vf, V1f, Vcf, sf, Tf), shape = _flat(V, V1, Vc, s, T)
    if np.all(sf == 0):
        out = _plain_fractions_fn(g_e)(Vf, V1f, Vcf, Tf)
    else:
        out = _in_blocks(_fractions_fn(g_e, int(n_nodes), float(half_width)), Vf, V1f, Vcf, sf, Tf,
                         per_element=n_nodes)
    return out.reshape(shape + (g_e + 1,))


@functools.lru_cache(maxsize=None)
def _uniform_fractions_fn(g_e):
    m = pt.dvector("mean_electrons")
    return _function([m], charging.charge_fractions_uniform(m, g_e))


def charge_fractions_uniform(mean_electrons, g_e=2):
    """Fractions f_0..f_{g_e} (last axis) under uniform doping: every QD holds floor or ceil of ``mean_electrons``
    (``charging.charge_fractions_uniform``; values outside [0, g_e] are clipped)."""
    g_e, _ = _degeneracies(g_e, 1)
    m = _array(mean_electrons, "mean_electrons")
    (mf,), shape = _flat(m)
    return _uniform_fractions_fn(g_e)(mf).reshape(shape + (g_e + 1,))


def mean_electrons(charge_fractions):
    """<n_e> = sum_n n f_n (eq. S14) over the last axis."""
    f = _array(charge_fractions, "charge_fractions")
    _fractions(f, f.shape[-1] - 1 if f.ndim else 0)
    return f @ np.arange(f.shape[-1], dtype=float)


def effective_temperature_K(sigma_1S, temperature_K=293.0):
    """Effective temperature equivalent to Gaussian level disorder (see ``charging.effective_temperature_K``)."""
    return _elementwise("effective_temperature_K", _nonnegative(sigma_1S, "sigma_1S", "V"),
                        _positive(temperature_K, "temperature_K", "K"))


# ----------------------------------------------------------------------------- Auger cascade
def auger_rate(N, n_echem, k_xx, k_x=0.0):
    """k(N, n) per ps from transition counting (eq. S22) plus N k_x."""
    N = _nonnegative(N, "N", "excitons per QD")
    n = _nonnegative(n_echem, "n_echem", "electrons per QD")
    kxx = _nonnegative(k_xx, "k_xx", "per ps")
    kx = _nonnegative(k_x, "k_x", "per ps")
    flats, shape = _flat(N, n, kxx, kx)
    return _rate_fn()(*flats).reshape(shape)


def _cascade_checked(mean_excitons, charge_fractions, k_xx, k_x, g_e, g_h, n_max):
    g_e, g_h = _degeneracies(g_e, g_h)
    mean = _nonnegative(mean_excitons, "mean_excitons", "excitons per QD")
    f = _fractions(charge_fractions, g_e)
    kxx = float(_positive(k_xx, "k_xx", "per ps (biexciton Auger rate)"))
    kx = float(_nonnegative(k_x, "k_x", "per ps (single-exciton rate)"))
    # the lumped cascade needs every state up to max(g_e, g_h) explicitly
    return g_e, g_h, mean, f, kxx, kx, max(_n_max(mean, n_max), g_e, g_h)


def cascade_absorption(mean_excitons, charge_fractions, delays_ps, k_xx, k_x=0.0, g_e=2, g_h=4, n_max=None):
    """Ensemble band-edge absorption versus delay (units of gamma) after Auger decay (eq. S17-S19).

    ``mean_excitons`` (...) and ``charge_fractions`` (..., S) broadcast; ``delays_ps`` is 1-D (T);
    ``k_xx``, ``k_x`` are scalars per ps.  Returns (..., T).
    """
    g_e, g_h, mean, f, kxx, kx, n_max = _cascade_checked(mean_excitons, charge_fractions, k_xx, k_x, g_e, g_h, n_max)
    t = _nonnegative(delays_ps, "delays_ps", "ps")
    if t.ndim != 1:
        raise ValueError(f"delays_ps must be 1-D; got shape {t.shape}")
    (m,), ff, shape = _flat_with_fractions([mean], f)
    out = _cascade_fn(g_e, g_h)(m, ff, t, kxx, kx, n_max)
    return out.reshape(shape + (t.size,))


def state_populations(initial, rates, delays_ps):
    """Populations f(N, t) for N = 0..M of one charge state's chain (eq. S19), closed form.

    ``initial`` (M+1,) populations at t = 0; ``rates`` (M,) decay rates of N = 1..M per ps.
    """
    f0 = _nonnegative(initial, "initial", "fraction")
    k = _nonnegative(rates, "rates", "per ps")
    t = _nonnegative(delays_ps, "delays_ps", "ps")
    if f0.ndim != 1 or k.ndim != 1 or f0.size != k.size + 1:
        raise ValueError(f"initial must have shape (M+1,) and rates (M,); got {f0.shape} and {k.shape}")
    if np.any(k[1:] <= 0) or np.any(np.diff(np.sort(k[1:])) <= 1e-12 * k[1:].max()):
        raise ValueError("rates of N >= 2 must be positive and distinct (the closed form needs distinct rates)")
    return _populations_fn()(f0, k, t)


def gain_lifetime(mean_excitons, charge_fractions, k_xx, k_x=0.0, g_e=2, g_h=4, max_delay_ps=1e5,
                  rtol=1e-10):
    """Gain lifetime in ps: the first delay at which the ensemble band-edge absorption returns to >= 0.

    0 where there is no gain at zero delay; inf where absorption is still negative at
    ``max_delay_ps`` (fully doped films with k_x = 0 never recover: their gain outlives any window).
    The absorption rises monotonically in time (the cascade only lowers N), so a log-spaced scan
    brackets the crossing and bisection refines it to ``rtol``.
    """
    g_e, g_h, mean, f, kxx, kx, n_max = _cascade_checked(mean_excitons, charge_fractions, k_xx, k_x, g_e, g_h, None)
    (m,), ff, shape = _flat_with_fractions([mean], f)
    grid = np.concatenate([[0.0], np.geomspace(1e-3, float(max_delay_ps), 256)])
    A = _cascade_fn(g_e, g_h)(m, ff, grid, kxx, kx, n_max)  # (B, T)
    recovered = A >= 0
    out = np.full(m.shape, np.inf)
    out[recovered[:, 0]] = 0.0
    todo = ~recovered[:, 0] & recovered.any(axis=1)
    if np.any(todo):
        first = np.argmax(recovered[todo], axis=1)
        lo, hi = grid[first - 1], grid[first]
        mt, ft = m[todo], ff[todo]
        while np.max((hi - lo) / hi) > rtol:
            mid = 0.5 * (lo + hi)
            up = _cascade_fn(g_e, g_h, True)(mt, ft, mid[:, None], kxx, kx, n_max)[:, 0] >= 0
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
        out[todo] = hi
    return out.reshape(shape)


def threshold_versus_doping(mean_electrons_target, V_1S, V_C=0.0, sigma_1S=0.0, temperature_K=293.0,
                            g_e=2, g_h=4, n_nodes=charging.DEFAULT_QUADRATURE_NODES):
    """<N_gain> at target doping levels <n_e> (0 < <n_e> < g_e); all arguments broadcast (e.g. over draws).

    Inverts <n_e>(V) by bisection (it decreases monotonically with V), takes the charge fractions
    at that potential and solves for the threshold.  Returns (thresholds, fractions).
    """
    target = _array(mean_electrons_target, "mean_electrons_target")
    if np.any(target <= 0) or np.any(target >= g_e):
        raise ValueError(f"mean_electrons_target must lie strictly between 0 and g_e = {g_e}; got "
                         f"[{target.min()!r}, {target.max()!r}]")
    target, V1, Vc, s, T = np.broadcast_arrays(target, _array(V_1S, "V_1S"), _array(V_C, "V_C"),
                                               _nonnegative(sigma_1S, "sigma_1S", "V"),
                                               _positive(temperature_K, "temperature_K", "K"))
    # wide enough that <n_e> is within 1e-12 of g_e (lo) and of 0 (hi) at the ends
    width = 12 * s + np.abs(Vc) * g_e + 40 * BOLTZMANN_EV_PER_K * T
    lo, hi = V1 - width, V1 + width
    for _ in range(44):  # bracket of ~2 V down to 1e-13 V
        mid = 0.5 * (lo + hi)
        too_full = mean_electrons(charge_fractions(mid, V1, Vc, s, T, g_e, n_nodes)) > target
        lo = np.where(too_full, mid, lo)
        hi = np.where(too_full, hi, mid)
    f = charge_fractions(0.5 * (lo + hi), V1, Vc, s, T, g_e, n_nodes)
    return gain_threshold(f, g_e, g_h), f


# ----------------------------------------------------------------------------- optics
def reflection_correct(dA_star, dR, F_A, F_R):
    """True Delta A (OD) from Delta A* (OD), Delta R (OD) and the absorbed/reflected fractions (eq. S33)."""
    FA = _array(F_A, "F_A")
    FR = _array(F_R, "F_R")
    if np.any((FA < 0) | (FA >= 1)):
        raise ValueError("F_A must lie in [0, 1) (fraction of absorbed light)")
    if np.any(FR < 0) or np.any(FA + FR > 1):
        raise ValueError("F_R must be >= 0 and F_A + F_R <= 1 (fractions of absorbed and reflected light)")
    return _elementwise("reflection_correct", _array(dA_star, "dA_star"), _array(dR, "dR"), FA, FR)


def depth_averaged_fluence(fluence_photons_cm2, pump_absorbance_OD):
    """Pump fluence (photons/cm^2) averaged over a cuvette of absorbance ``pump_absorbance_OD``."""
    return _elementwise("depth_averaged_fluence",
                        _nonnegative(fluence_photons_cm2, "fluence_photons_cm2", "photons/cm^2"),
                        _nonnegative(pump_absorbance_OD, "pump_absorbance_OD", "OD"))


def pump_depth_profile(pump_absorbance_OD, n_nodes=None):
    """Relative pump excitation r_k (..., n_nodes) at the Gauss-Legendre depth nodes of a film of pump absorbance
    (OD) and the weights w_k (n_nodes,): a depth-averaged observable is sum_k w_k F(<N>_front r_k).  ``n_nodes``
    None: enough for the largest absorbance given (``optics.pump_depth_node_count``)."""
    A = _nonnegative(pump_absorbance_OD, "pump_absorbance_OD", "OD")
    n = optics.pump_depth_node_count(A) if n_nodes is None else int(n_nodes)
    if n < 1:
        raise ValueError(f"n_nodes must be a positive integer; got {n_nodes!r}")
    r, w = _pump_depth_fn(n)(A.reshape(-1))
    return r.reshape(A.shape + (n,)), w


@functools.lru_cache(maxsize=None)
def _pump_depth_fn(n_nodes):
    A = pt.dvector("pump_absorbance_OD")
    return _function([A], list(optics.pump_depth_profile(A, n_nodes)))


def bleach_saturation(cross_section_cm2, fluence_photons_cm2):
    """1 - exp(-sigma J): fraction of QDs excited at least once (eq. S34)."""
    return _elementwise("bleach_saturation", _nonnegative(cross_section_cm2, "cross_section_cm2", "cm^2"),
                        _nonnegative(fluence_photons_cm2, "fluence_photons_cm2", "photons/cm^2"))


def fluence_to_energy_density_nJ_cm2(fluence_photons_cm2, wavelength_nm):
    """Photon fluence (photons/cm^2) -> pulse energy density (nJ/cm^2) at ``wavelength_nm``."""
    return _elementwise("fluence_to_energy_density_nJ_cm2",
                        _nonnegative(fluence_photons_cm2, "fluence_photons_cm2", "photons/cm^2"),
                        _positive(wavelength_nm, "wavelength_nm", "nm"))


def energy_density_nJ_cm2_to_fluence(energy_density_nJ_cm2, wavelength_nm):
    """Pulse energy density (nJ/cm^2) -> photon fluence (photons/cm^2) at ``wavelength_nm``."""
    return _elementwise("energy_density_nJ_cm2_to_fluence",
                        _nonnegative(energy_density_nJ_cm2, "energy_density_nJ_cm2", "nJ/cm^2"),
                        _positive(wavelength_nm, "wavelength_nm", "nm"))


def gain_coefficient_per_cm(absorbance_OD, thickness_nm):
    """g = -A ln(10) / d in cm^-1 for absorbance A (OD) of a film of thickness d (nm)."""
    return _elementwise("gain_coefficient_per_cm", _array(absorbance_OD, "absorbance_OD"),
                        _positive(thickness_nm, "thickness_nm", "nm"))


@functools.lru_cache(maxsize=8)  # the same table for every draw and every call of a report
def ensemble_table(g_e, g_h, upper=None, n_grid=4001, hole_trapping="emission"):
    """a_n(<N>) = sum_N P(N; <N>) A*(N, n) and the change per unit hole-trap fraction e_n(<N>) on a <N> grid:
    (grid,), (grid, S) x 2.  e_n is the emission part for ``hole_trapping = "emission"`` (A + eta e) and the
    trapped-hole counting minus the plain one for ``"counting"`` ((1 - eta) a + eta a_trap = a + eta e, exact
    at t = 0)."""
    upper = ensemble.threshold_bracket(g_e, g_h) if upper is None else upper
    grid = np.linspace(0.0, upper, n_grid)
    S = g_e + 1
    eye = np.eye(S)
    a = np.stack([ensemble_absorption(grid, eye[n], g_e, g_h) for n in range(S)], axis=-1)
    n_max = required_n_max(upper)
    N = np.arange(n_max + 1, dtype=float)
    from scipy import stats

    P = stats.poisson.pmf(N[None, :], grid[:, None])
    if hole_trapping == "counting":
        n_max_t = int(N[-1])
        emis = (transitions.trapped_hole_transition_table(n_max_t, g_e, g_h).eval()
                - transitions.transition_table(n_max_t, g_e, g_h).eval())
    else:
        emis = transitions.emission_table(int(N[-1]), g_e, g_h)
    return grid, a, P @ emis


@functools.lru_cache(maxsize=8)
def charged_exciton_ensemble_table(g_e, g_h):
    """h_n(<N>) = sum_N P(N; <N>) min(N, g_h) [n >= 1] on :func:`ensemble_table`'s grid: (grid, S), what the
    charge-dependent emission c multiplies (A* - c h)."""
    grid = ensemble_table(g_e, g_h)[0]
    n_max = required_n_max(grid[-1])
    from scipy import stats

    P = stats.poisson.pmf(np.arange(n_max + 1.0)[None, :], grid[:, None])
    return P @ transitions.charged_exciton_table(n_max, g_e, g_h)


def threshold_on_table(f, g_e, g_h, eta=None, level=0.0, hole_trapping="emission", charged_emission=None):
    """<N> where sum_n f_n [a_n + eta e_n - c h_n](<N>) = level, for f (..., S); eta and the charged emission c
    (:func:`charged_exciton_ensemble_table`) broadcast over (...): the threshold of
    many posterior draws at once on the tabulated ensemble absorption (:func:`ensemble_table`), error < 1e-4
    excitons/QD against the PyTensor root (``ensemble.solve_threshold``); 0 where no excitation is needed, inf
    beyond the table."""
    grid, a, e = ensemble_table(g_e, g_h, hole_trapping=hole_trapping)
    f = np.asarray(f, float)
    shape = f.shape[:-1]
    ff = f.reshape(-1, f.shape[-1])
    lv = np.broadcast_to(np.asarray(level, float), shape).reshape(-1)
    # per-draw coefficients (B, 1) of the additive terms (+eta e, -c h), None where absent
    per_draw = lambda coef: (None if coef is None else  # noqa: E731
                             np.broadcast_to(np.asarray(coef, float), shape).reshape(-1, 1))
    eta_b, c_b = per_draw(eta), per_draw(charged_emission)
    h = None if charged_emission is None else charged_exciton_ensemble_table(g_e, g_h)

    def A(i):
        tab = transitions.effective_table(a[i], e[i], eta_b, None if h is None else h[i], c_b)
        return np.einsum("bs,bs->b", ff, tab) - lv

    # coarse bracket with one matrix product on every 128th grid point, then bisection inside it
    stride = 128
    coarse = np.unique(np.append(np.arange(0, grid.size, stride), grid.size - 1))
    project = lambda tab: None if tab is None else ff @ tab[coarse].T  # noqa: E731  (B, C)
    Ac = transitions.effective_table(project(a), project(e), eta_b, project(h), c_b)  # decreasing along C
    if np.any(lv):
        Ac -= lv[:, None]
    out = np.full(ff.shape[0], np.nan)
    out[Ac[:, 0] <= 0] = 0.0
    out[Ac[:, -1] > 0] = np.inf
    todo = (Ac[:, 0] > 0) & (Ac[:, -1] <= 0)
    j = np.clip(np.argmax(Ac <= 0, axis=1), 1, coarse.size - 1)
    lo = coarse[j - 1]
    hi = coarse[j]
    while np.any(todo & (hi - lo > 1)):
        mid = (lo + hi) // 2
        above = A(mid) > 0
        lo = np.where(todo & above, mid, lo)
        hi = np.where(todo & ~above, mid, hi)
    a_lo, a_hi = A(lo), A(hi)
    frac = np.where(a_lo != a_hi, a_lo / np.where(a_lo != a_hi, a_lo - a_hi, 1.0), 0.0)
    root = grid[lo] + frac * (grid[hi] - grid[lo])
    out[todo] = root[todo]
    return out.reshape(shape)
