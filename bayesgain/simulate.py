"""Simulator of SYNTHETIC experiments: solution TA, film TA/TR and spectro-electrochemistry (SEC).

Every folder written here is SYNTHETIC.  :func:`simulate_experiment` writes one experiment folder
(``experiment.toml`` + CSV files in the Ultrafast Systems / Helios matrix layout, see the folder
format in ``data/README.md``) and a ``truth.toml`` with every true parameter.  The forward model is
deliberately *richer* than the inference model (so fitting it is not an inverse crime), and its
physics (charge fractions, Poisson excitation, transition counting, Auger cascade) is its own
implementation, :mod:`bayesgain.sim_physics`, not the model's :mod:`bayesgain.physics`:

* Steady-state absorbance A0(lambda): Gaussian-in-energy 1S and 2S transitions, an erf-shaped CdS
  shell edge that keeps rising to the blue, and a smooth E^4 background (never bleached).
* Band-edge state filling by transition counting: the 1S component is
  ``A_1S(lambda; E_1S - delta(t)) * A_eff(t) / (g_e g_h) - A_1S(lambda) * A_pre / (g_e g_h)``, with
  ``A_eff`` the ensemble band-edge absorption after the Auger cascade (master equation by matrix
  exponential, plus the hole-trapping term below), ``A_pre`` the unexcited (possibly charged)
  ensemble, and ``delta(t) = biexciton_shift_meV * x(t)^2`` a shift of the excited band edge,
  ``x = (A_pre - A_eff) / (2 g_e g_h)`` in [0, 1]; to the blue by default (knob
  ``biexciton_shift_direction``), to the red in the presets batch-a/batch-b (as data/ was made).
* 2S and shell bleach, and a weak photo-induced absorption (PIA) below the gap, in proportion to the
  change of the 1S(e) electron occupancy ``o = <min(N + n, g_e)> / g_e`` (photo + electrochemical).
* Hole trapping (batch B): a fraction ``eta = hole_trap_fraction`` of the QDs has one photo-excited hole
  trapped from t = 0 (knob ``hole_trap_form = "counting"``, the default): transition counting with that hole
  off the band edge (its transition absorbs again, its emission is gone) and the trapped-hole Auger pathways,
  as chains of their own (:func:`bayesgain.sim_physics.ensemble_observables`).  ``hole_trap_form =
  "emission"`` is the older form: a fraction eta of every stimulated-emission transition removed,
  ``A*_eta(N, n) = A*(N, n) + eta * min(N, g_h) * min(N + n, g_e)``.
* Instrument response: every pump-induced signal is multiplied by ``0.5 (1 + erf(t / (sqrt2 irf_sd_ps)))``
  and the kinetics are evaluated at ``max(t, 0)``.
* Transient reflection (film only): ``dR(lambda, t) = IRF(t) a(t) [dR_derivative_OD D(lambda) +
  dR_subgap_OD B(lambda)]`` with ``a(t) = <min(N, g_e)>/g_e`` of the *neutral* Poisson/Auger chain
  for the file's true <N> (independent of the potential, as the paper assumes), ``D`` the energy
  derivative of the 1S Gaussian normalised to a peak of 1 and ``B = 1 / (1 + exp((E - E_1S +
  subgap_offset) / subgap_width))`` a broad sub-gap step.  The recorded film "extinction" is the
  analytic inverse of SI eq. S33: ``10^-dA* = (10^-dA (1 - F_A) - 10^-dR F_R) / (1 - F_A - F_R)``,
  with ``F_A = 1 - 10^-A0`` (eq. S28) and ``F_R = r(lambda) 10^-A0`` (light reflected at the back
  interfaces passes the film; ``r`` a smooth 7-13 % ripple).
* Noise: white detector noise ``noise_OD * min(sqrt(P_max / P(lambda)), noise_edge_cap)`` with a
  Gaussian probe spectrum ``P``, plus one baseline offset per delay (per potential for SEC); PL has
  shot noise ``sqrt(counts)`` plus read noise.
* Charging: grand-canonical fractions with Gaussian level disorder sigma_1S, SEC sweeps
  with a per-cycle potential drift and a forward/backward hysteresis (forward sweeps lag:
  ``V_eff = V + drift_c + hysteresis/2``, backward ``V_eff = V + drift_c - hysteresis/2``).
* Fluence calibration: the file records the NOMINAL fluence; true = nominal * exp(N(0, fluence_log_sd)).
  Film <N> = film_cross_section_ratio * sigma * J_true; solution <N> = sigma * depth-averaged J_true.

* Mismatch knobs (:data:`KNOBS`, off by default; named combinations in :mod:`bayesgain.scenarios`,
  table in ``docs/mismatch-scenarios.md``): a 2S/higher-band bleach tail in the 1S window with its
  own decay, hot-carrier cooling, Beer-Lambert pump attenuation through the film (depth average of
  the response over 8 Gauss-Legendre slices), wavelength-correlated noise and per-delay baseline
  jitter, SEC lag / within-sweep drift / signal loss per cycle, forward-only SEC, and film TA
  written reflection corrected without TR files.

Only ``numpy.random.default_rng(seed)`` (and ``default_rng([seed, 1])`` for the knobs' own noise)
draws random numbers and every number is written with a fixed format, so the same seed and preset
give byte-identical files.
"""

import math
import pathlib

import numpy as np
from scipy import optimize, special, stats

from . import __version__
from ._atomic import write_text_atomic
from . import sim_physics as sp
from .safety.outfolder import remove_simulated

__all__ = ["PRESETS", "KNOBS", "simulate_experiment", "preset_parameters", "preset_knobs",
           "band_edge_window_threshold", "excited_state", "window_thresholds", "to_toml", "HC_EV_NM"]

HC_EV_NM = 1239.84198  # h c in eV nm
SYNTHETIC_NOTE = "SYNTHETIC data generated by bayesgain.simulate (not a measurement)"

# ----------------------------------------------------------------------------- presets
_BATCH_A = dict(
    label="first batch of CdSe/CdS/ZnS QDs (paper main text)",
    # sample
    g_e=2, g_h=4, temperature_K=293.0,
    film_thickness_nm=116.0, film_thickness_sd_nm=13.0,
    pump_wavelength_nm=400.0,
    # excitation
    cross_section_400nm_cm2=3.6e-14,
    film_cross_section_ratio=1.05,          # film sigma = ratio * solution sigma
    fluence_log_sd=0.05,                     # true J = nominal J * exp(N(0, sd)) per file
    # charging (V vs Ag pseudo-reference)
    open_circuit_potential_V=-0.30,
    V_1S_V=-1.25, V_C_V=0.005, sigma_1S_V=0.110,
    sec_start_V=-0.30, sec_end_V=-1.60, sec_step_V=0.02, sec_cycles=3,
    sec_drift_sd_V=0.004, sec_hysteresis_V=0.010,
    # Auger cascade / IRF
    tau_xx_ps=310.0, tau_x_ps=20000.0, irf_sd_ps=0.12,
    hole_trap_fraction=0.0,
    # steady-state spectra (film); the solution is the same QDs, scaled and slightly blue-shifted.
    # Film 1S OD 0.0045: full inversion gives g = A ln10 / d ~ 900 cm^-1 at d = 116 nm (paper: ~800 max)
    peak_1S_nm=605.0, fwhm_1S_meV=55.0, peak_2S_nm=560.0, fwhm_2S_meV=100.0,
    shell_edge_nm=495.0, shell_edge_width_meV=60.0,
    # film 1S OD: full inversion gives g = A ln10 / d ~ 900 cm^-1 at d = 116 nm (paper: ~800 cm^-1 max)
    film_1S_peak_OD=0.0045, solution_1S_peak_OD=0.060, solution_1S_blue_shift_meV=4.0,
    ratio_2S_to_1S=0.55, ratio_shell_to_1S=3.0, ratio_background_to_1S=0.008,
    # excited-state extras
    bleach_2S_fraction=0.35, bleach_shell_fraction=0.12, biexciton_shift_meV=20.0,
    pia_fraction=0.005, pia_peak_nm=650.0, pia_fwhm_meV=250.0,
    # reflection
    reflectance_mean=0.10, reflectance_ripple=0.03, reflectance_period_nm=180.0,
    dR_derivative_OD=0.003, dR_subgap_OD=0.008, dR_subgap_offset_meV=30.0, dR_subgap_width_meV=40.0,
    # noise
    noise_OD=1.5e-4, baseline_noise_OD=3e-5, tr_noise_OD=3e-4,
    sec_noise_OD=3e-5, sec_baseline_noise_OD=1e-5,
    probe_center_nm=590.0, probe_sd_nm=75.0, noise_edge_cap=6.0,
    # photoluminescence SEC
    pl_peak_counts=40000.0, pl_stokes_meV=25.0, pl_fwhm_meV=75.0, pl_q1=0.20, pl_q2=0.05,
    pl_trion_shift_meV=-15.0, pl_tetron_blue_shift_meV=110.0, pl_dark_counts=30.0, pl_read_noise_counts=8.0,
    # grids
    probe_min_nm=450.0, probe_max_nm=720.0, n_wavelengths=109,
    steady_min_nm=350.0, steady_max_nm=750.0, steady_step_nm=1.0,
    pl_min_nm=560.0, pl_max_nm=700.0, n_pl_wavelengths=71,
    delay_min_ps=-1.0, delay_linear_step_ps=0.1, delay_linear_end_ps=1.0, delay_max_ps=3000.0, n_log_delays=50,
    # design (paper values): <N> set by the nominal fluence with the solution cross-section
    solution_mean_excitons="0.34,0.45,1.09,2.66,3.52,4.28,5.03,7.91,9.09",
    film_mean_excitons="0.3,0.5,0.8,1.3,1.9,3.1,5.3,5.9,6.6",
    film_mean_electrons="0,0.5,0.94,1.5,1.9,1.99",
)

_BATCH_B = dict(
    _BATCH_A,
    label="second batch (PLQY 71 %, hole trapping; paper SI Fig. S29-S40)",
    hole_trap_fraction=0.49,  # with trapped holes by transition counting: the 5 ps window threshold ~1.8 (S33)
    V_1S_V=-1.22,
    cross_section_400nm_cm2=3.4e-14,
    film_cross_section_ratio=1.08,
    peak_1S_nm=610.0, peak_2S_nm=565.0, fwhm_1S_meV=58.0,
    film_1S_peak_OD=0.0040, solution_1S_peak_OD=0.050,
    pl_peak_counts=25000.0,
    solution_mean_excitons="0.27,0.33,0.73,1.79,2.36,2.92,3.4,5.22,6.01",
    film_mean_excitons="0.2,0.5,1.6,3.2",
    film_mean_electrons="0,0.8,1.5,1.9,1.98,1.995",
)

PRESETS = {
    "batch-a": _BATCH_A,
    "batch-b": _BATCH_B,
}
"""Named parameter sets.  Units are in the key names (``_nm``, ``_meV``, ``_V``, ``_ps``, ``_OD``,
``_cm2``); ``*_fraction``/``ratio_*`` are dimensionless.  The design lists (``*_mean_excitons``:
<N> that the NOMINAL fluence gives with the solution cross-section; ``film_mean_electrons``: <n_e>
targets for which the film TA potentials are solved) are comma-separated strings so the preset
fits the flat ``truth.toml``.  ``hole_trap_fraction`` of batch B is tuned so that the 5 ps band-edge
window threshold of its solution series comes out near 1.8 (paper Fig. S33)."""

# Mismatch knobs: what real films do and the inference model does not share.  Defaults are off (the
# simulation is unchanged) except the direction of the biexciton line shift, which is blue (paper: a
# repulsive biexciton in thick-shell dots shifts the gain line up to ~20 meV to the blue); the shipped
# presets keep the red shift they were generated with (``_PRESET_KNOBS``), so data/ stays reproducible.
KNOBS = dict(
    biexciton_shift_direction="blue",   # "blue" | "red": sign of the excited 1S line shift biexciton_shift_meV x^2
    tail_2s_fraction=0.0,               # 2S/higher-band bleach tail in the 1S window: peak OD / film 1S peak OD
    tail_2s_fwhm_meV=250.0,             # width of that tail's Gaussian line (centred on the 2S transition)
    tail_2s_tau_ps=100.0,               # its own decay time (not the Auger cascade's)
    cooling_time_ps=0.0,                # hot-carrier cooling: band-edge signals rise as 1 - exp(-t / tau); 0 = instant
    pump_attenuation=False,             # Beer-Lambert depth profile of <N> through the film (film OD at the pump)
    correlated_noise_OD=0.0,            # TA noise correlated along wavelength (sd per point)
    correlated_noise_length_nm=15.0,    # its Gaussian correlation length
    baseline_jitter_OD=0.0,             # per-delay baseline offset and linear tilt across the probe (sd each)
    sec_drift_within_sweep_V=0.0,       # sd of a linear potential drift from the start to the end of each sweep
    sec_lag_steps=0.0,                  # first-order lag of the film potential behind the applied one (in steps)
    sec_bleach_loss_per_cycle=0.0,      # fractional loss of the SEC signals per cycle (film degradation)
    sec_directions="forward,backward",  # which SEC sweeps are written ("forward" = towards negative potential)
    film_ta_reflection_corrected=False,  # film TA written as true Delta A (reflection corrected), no TR files
    charged_extra_emission=0.0,         # extra stimulated emission per exciton in a charged QD (units of gamma)
    hole_trap_form="counting",          # "counting": trapped holes by transition counting; "emission": eta x emission lost
)
"""Mismatch knobs (see ``docs/mismatch-scenarios.md``); pass them like preset keys."""

_PRESET_KNOBS = {"batch-a": {"biexciton_shift_direction": "red"},
                 "batch-b": {"biexciton_shift_direction": "red"}}
_LIST_KEYS = ("solution_mean_excitons", "film_mean_excitons", "film_mean_electrons")
_CHOICES = {"biexciton_shift_direction": ("blue", "red"), "hole_trap_form": ("counting", "emission")}
_DEPTH_NODES = 8  # Gauss-Legendre slices of the film depth (exact to < 1e-12 for the film's pump OD < 0.2)


def preset_knobs(preset="batch-a"):
    """Knob values of ``preset`` (the defaults of :data:`KNOBS` with the preset's own exceptions)."""
    return {**KNOBS, **_PRESET_KNOBS.get(preset, {})}


def preset_parameters(preset="batch-a", **overrides):
    """Parameters of ``preset`` and its knobs with ``overrides`` applied (unknown keys raise).  Lists become strings."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = {**PRESETS[preset], **preset_knobs(preset)}
    for key, value in overrides.items():
        if key not in p:
            raise ValueError(f"unknown parameter {key!r} for preset {preset!r}")
        if key in _LIST_KEYS and not isinstance(value, str):
            value = ",".join(f"{float(v):g}" for v in value)
        if isinstance(p[key], bool):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"parameter {key!r} must be true or false; got {value!r}")
            value = bool(value)
        p[key] = type(p[key])(value) if not isinstance(p[key], str) else str(value)
    for key, choices in _CHOICES.items():
        if p[key] not in choices:
            raise ValueError(f"parameter {key!r} must be one of {choices}; got {p[key]!r}")
    dirs = [d.strip() for d in p["sec_directions"].split(",") if d.strip()]
    if not dirs or any(d not in ("forward", "backward") for d in dirs) or len(set(dirs)) < len(dirs):
        raise ValueError(f"parameter 'sec_directions' must list forward and/or backward; got {p['sec_directions']!r}")
    return p


def _floats(text):
    return np.array([float(x) for x in str(text).split(",") if x.strip()], dtype=float)


# ----------------------------------------------------------------------------- spectra
def _gauss(E, E0, fwhm):
    return np.exp(-4.0 * math.log(2.0) * (E - E0) ** 2 / fwhm**2)


class _Spectra:
    """Steady-state absorbance components on a wavelength grid (OD), for the film or the solution."""

    def __init__(self, p, wavelength_nm, peak_1S_OD, blue_shift_meV=0.0):
        self.lam = np.asarray(wavelength_nm, float)
        self.E = HC_EV_NM / self.lam
        self.E1 = HC_EV_NM / p["peak_1S_nm"] + blue_shift_meV * 1e-3
        self.w1 = p["fwhm_1S_meV"] * 1e-3
        self.a1 = peak_1S_OD
        self.E2 = E2 = HC_EV_NM / p["peak_2S_nm"] + blue_shift_meV * 1e-3
        Esh = HC_EV_NM / p["shell_edge_nm"] + blue_shift_meV * 1e-3
        wsh = p["shell_edge_width_meV"] * 1e-3
        self.A1 = self.a1 * _gauss(self.E, self.E1, self.w1)
        self.A2 = p["ratio_2S_to_1S"] * self.a1 * _gauss(self.E, E2, p["fwhm_2S_meV"] * 1e-3)
        step = 0.5 * (1.0 + special.erf((self.E - Esh) / (math.sqrt(2.0) * wsh)))
        self.Ash = p["ratio_shell_to_1S"] * self.a1 * step * (1.0 + 3.0 * np.maximum(self.E - Esh, 0.0))
        self.Abg = p["ratio_background_to_1S"] * self.a1 * (self.E / self.E1) ** 4
        self.A0 = self.A1 + self.A2 + self.Ash + self.Abg
        self.pia = p["pia_fraction"] * self.a1 * _gauss(self.E, HC_EV_NM / p["pia_peak_nm"], p["pia_fwhm_meV"] * 1e-3)
        self.higher = p["bleach_2S_fraction"] * self.A2 + p["bleach_shell_fraction"] * self.Ash
        self.tail_2s = p["tail_2s_fraction"] * self.a1 * _gauss(self.E, self.E2, p["tail_2s_fwhm_meV"] * 1e-3)

    def band_edge(self, shift_eV):
        """1S absorbance with the line shifted by ``shift_eV`` (..., 1) -> (..., L)."""
        return self.a1 * _gauss(self.E, self.E1 - shift_eV, self.w1)


def _reflectance(p, lam, A0):
    r = p["reflectance_mean"] + p["reflectance_ripple"] * np.sin(2 * np.pi * (lam - 450.0) / p["reflectance_period_nm"])
    F_R = r * 10.0 ** (-A0)
    F_A = 1.0 - 10.0 ** (-A0)
    return F_A, F_R


def _probe_noise_scale(p, lam):
    P = np.exp(-0.5 * ((lam - p["probe_center_nm"]) / p["probe_sd_nm"]) ** 2)
    return np.minimum(1.0 / np.sqrt(P), p["noise_edge_cap"])


# ----------------------------------------------------------------------------- excited state
def excited_state(mean_excitons, fractions, delays_ps, p):
    """Ensemble observables after the Auger cascade, per condition (B,) and delay (T,).

    Computed by the simulator's own path (:func:`bayesgain.sim_physics.ensemble_observables`, matrix
    exponential of the master equation), never by the model's :mod:`bayesgain.physics`.  Returns a
    dict with ``A_ens`` (B, T) band-edge absorption (units of gamma; with ``hole_trap_form = "counting"`` a
    fraction eta of the QDs counted with one hole trapped, :func:`bayesgain.sim_physics.ensemble_observables`),
    ``A_eff`` = A_ens (+ eta <min(N,g_h) min(N+n,g_e)> under the older ``"emission"`` form, lost emission only)
    - c <min(N, g_h) [n >= 1]> (knob ``charged_extra_emission``), ``A_pre`` (B,) unexcited, ``occ`` (B, T) 1S(e)
    occupancy <min(N+n, g_e)>/g_e, ``occ_pre`` (B,) and ``a_neutral`` (B, T) = <min(N, g_e)>/g_e of
    the neutral chain (drives the reflection artefact).
    """
    mean = np.atleast_1d(np.asarray(mean_excitons, float))
    f = np.atleast_2d(np.asarray(fractions, float))
    t = np.maximum(np.asarray(delays_ps, float), 0.0)
    eta = p["hole_trap_fraction"]
    counting = p["hole_trap_form"] == "counting"
    ob = sp.ensemble_observables(mean, f, t, 1.0 / p["tau_xx_ps"], 1.0 / p["tau_x_ps"], p["g_e"], p["g_h"],
                                 hole_trap_fraction=eta if counting else 0.0)
    A_eff = ob["A"] + (0.0 if counting else eta * ob["emission"]) - p["charged_extra_emission"] * ob["charged_excitons"]
    return dict(A_ens=ob["A"], A_eff=A_eff, A_pre=ob["A_pre"],
                occ=ob["occupancy"], occ_pre=ob["occupancy_pre"], a_neutral=ob["neutral_occupancy"])


def _irf(p, delays):
    return 0.5 * (1.0 + special.erf(np.asarray(delays) / (math.sqrt(2.0) * p["irf_sd_ps"])))


def _cooling(p, delays):
    """Band-edge filling by hot-carrier cooling: 1 - exp(-t / tau_cool) (1 for instant cooling)."""
    return -np.expm1(-np.maximum(np.asarray(delays, float), 0.0) / p["cooling_time_ps"])


def _delta_A(p, spec, ex, delays, mean_excitons):
    """True pump-induced Delta A (B, L, T) in OD."""
    gg = p["g_e"] * p["g_h"]
    x = np.clip((ex["A_pre"][:, None] - ex["A_eff"]) / (2.0 * gg), 0.0, 1.0)  # (B, T)
    # band_edge shifts the line by -shift_eV in energy: a positive shift is red
    sign = 1.0 if p["biexciton_shift_direction"] == "red" else -1.0
    shift = sign * p["biexciton_shift_meV"] * 1e-3 * x**2
    exc = spec.band_edge(shift[..., None])  # (B, T, L)
    exc = exc.transpose(0, 2, 1) * (ex["A_eff"][:, None, :] / gg)
    d1S = exc - spec.A1[None, :, None] * (ex["A_pre"][:, None, None] / gg)
    docc = (ex["occ"] - ex["occ_pre"][:, None])[:, None, :]
    dA = d1S - spec.higher[None, :, None] * docc + spec.pia[None, :, None] * docc
    if p["cooling_time_ps"] > 0:
        dA = dA * _cooling(p, delays)[None, None, :]
    if p["tail_2s_fraction"] > 0:
        # excited QDs (1 - P(0)) bleach the higher band; it relaxes on its own clock, not the cascade's
        excited = -np.expm1(-np.asarray(mean_excitons, float))
        decay = np.exp(-np.maximum(np.asarray(delays, float), 0.0) / p["tail_2s_tau_ps"])
        dA = dA - spec.tail_2s[None, :, None] * excited[:, None, None] * decay[None, None, :]
    return dA * _irf(p, delays)[None, None, :]


def _film_response(p, spec, mean_excitons, fractions, delays, pump_OD):
    """Film Delta A and Delta R (B, L, T); with ``pump_OD`` > 0 averaged over the depth, where the
    pump (and so <N>) falls as 10^(-pump_OD z) (Gauss-Legendre slices; ``mean_excitons`` at the front)."""
    N = np.asarray(mean_excitons, float)
    f = np.atleast_2d(fractions)
    if pump_OD <= 0:
        ex = excited_state(N, f, delays, p)
        return _delta_A(p, spec, ex, delays, N), _delta_R(p, spec, ex, delays)
    z, w = np.polynomial.legendre.leggauss(_DEPTH_NODES)
    z, w = 0.5 * (z + 1.0), 0.5 * w
    Nk = (N[:, None] * 10.0 ** (-pump_OD * z)[None, :]).reshape(-1)
    ex = excited_state(Nk, np.repeat(f, z.size, axis=0), delays, p)
    avg = lambda a: np.einsum("bkLT,k->bLT", a.reshape(N.size, z.size, *a.shape[1:]), w)  # noqa: E731
    return avg(_delta_A(p, spec, ex, delays, Nk)), avg(_delta_R(p, spec, ex, delays))


def _correlated_noise(p, rng, n_lam, n_delays, lam_step_nm):
    """Noise correlated along wavelength (Gaussian kernel) plus a per-delay baseline offset and tilt (L, T)."""
    out = np.zeros((n_lam, n_delays))
    if p["correlated_noise_OD"] > 0:
        s = p["correlated_noise_length_nm"] / lam_step_nm
        half = int(math.ceil(4 * s))
        k = np.exp(-0.5 * (np.arange(-half, half + 1) / s) ** 2)
        k = k / math.sqrt(np.sum(k**2))  # unit variance per point
        white = rng.normal(0.0, 1.0, (n_lam + 2 * half, n_delays))
        smooth = np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, white)
        out += p["correlated_noise_OD"] * smooth
    if p["baseline_jitter_OD"] > 0:
        tilt = np.linspace(-1.0, 1.0, n_lam)[:, None]
        offset, slope = rng.normal(0.0, p["baseline_jitter_OD"], (2, n_delays))
        out += offset[None, :] + slope[None, :] * tilt
    return out


def _lagged(V, steps):
    """Film potential lagging the applied sweep ``V`` by a first-order relaxation of ``steps`` sweep steps."""
    if steps <= 0:
        return V
    a = 1.0 / (1.0 + steps)
    out = np.empty_like(V)
    out[0] = V[0]
    for i in range(1, V.size):
        out[i] = out[i - 1] + a * (V[i] - out[i - 1])
    return out


def _delta_R(p, spec, ex, delays):
    z = (spec.E - spec.E1) / (spec.w1 / (2 * math.sqrt(2 * math.log(2))))
    D = z * np.exp(0.5 - 0.5 * z**2)
    B = 1.0 / (1.0 + np.exp((spec.E - spec.E1 + p["dR_subgap_offset_meV"] * 1e-3) / (p["dR_subgap_width_meV"] * 1e-3)))
    shape = p["dR_derivative_OD"] * D + p["dR_subgap_OD"] * B
    return shape[None, :, None] * ex["a_neutral"][:, None, :] * _irf(p, delays)[None, None, :]


def _extinction(dA, dR, F_A, F_R):
    """Raw Delta A* such that SI eq. S33 applied to (Delta A*, Delta R) returns Delta A."""
    num = 10.0 ** (-dA) * (1.0 - F_A) - 10.0 ** (-dR) * F_R
    return -np.log10(num / (1.0 - F_A - F_R))


def band_edge_window_threshold(mean_excitons, dA_window, A0_window):
    """<N> where the window-averaged bleach -dA reaches the window-averaged A0 (linear interpolation
    of -dA/A0 between the measured fluences; nan if not crossed).  Classic paper analysis."""
    m = np.asarray(mean_excitons, float)
    order = np.argsort(m)
    m, frac = m[order], (-np.asarray(dA_window, float) / A0_window)[order]
    above = np.nonzero(frac >= 1.0)[0]
    if above.size == 0 or above[0] == 0:
        return float("nan")
    i = above[0]
    return float(m[i - 1] + (1.0 - frac[i - 1]) * (m[i] - m[i - 1]) / (frac[i] - frac[i - 1]))


def _fractions(p, potential_V):
    """Charge fractions of the simulated film (disordered, the simulator's own implementation)."""
    return sp.fractions(potential_V, p["V_1S_V"], p["V_C_V"], p["sigma_1S_V"], p["temperature_K"], p["g_e"])


def _depth_average_ratio(absorbance_OD):
    """Mean of 10^(-A z) over the depth z in [0, 1]: (1 - e^{-aL}) / aL with aL = A ln 10 (Beer-Lambert)."""
    aL = float(absorbance_OD) * math.log(10.0)
    return 1.0 - 0.5 * aL if aL < 1e-6 else float(-np.expm1(-aL) / aL)


def _solve_potentials(p, targets):
    """Potentials (V, rounded to 1 mV) at which <n_e> equals the targets; 0 -> open circuit."""
    out = []
    for target in targets:
        if target <= 0:
            out.append(p["open_circuit_potential_V"])
            continue
        def g(V):
            return float(sp.mean_electrons(_fractions(p, V))) - target
        V = optimize.brentq(g, p["V_1S_V"] - 1.5, p["open_circuit_potential_V"], xtol=1e-7)
        out.append(round(V, 3))
    return np.array(out)


def _threshold_eta(p, fractions):
    """t = 0 gain threshold <N> with hole trapping (brentq on the Poisson average), per fraction row."""
    g_e, g_h, eta = p["g_e"], p["g_h"], p["hole_trap_fraction"]
    N = np.arange(80, dtype=float)
    res = []
    for f in np.atleast_2d(fractions):
        table = sp.band_edge_table(N.size - 1, g_e, g_h)
        c = p["charged_extra_emission"]
        if p["hole_trap_form"] == "counting":
            trapped = sp.trapped_band_edge_table(N.size - 1, g_e, g_h)
            holes_t = np.maximum(N - 1, 0)
            A = sum(f[n] * ((1 - eta) * (table[:, n] - c * np.minimum(N, g_h) * (n >= 1))
                            + eta * (trapped[:, n] - c * np.minimum(holes_t, g_h) * (n >= 1))) for n in range(g_e + 1))
        else:
            A = sum(f[n] * (table[:, n] + eta * np.minimum(N, g_h) * np.minimum(N + n, g_e)
                            - c * np.minimum(N, g_h) * (n >= 1)) for n in range(g_e + 1))
        fun = lambda m: float(stats.poisson.pmf(N, m) @ A)  # noqa: E731
        if fun(1e-9) <= 0:
            res.append(0.0)
        elif fun(40.0) > 0:
            res.append(float("inf"))
        else:
            res.append(optimize.brentq(fun, 1e-9, 40.0, xtol=1e-10))
    return np.array(res)


def window_thresholds(p, spectra, potentials, delay_ps, pump_OD=0.0, upper=6.0, n_grid=1200):
    """True "measured" threshold per potential: the (depth-averaged) <N> at which the noise-free window A*
    = A_0 + Delta A_SEC + Delta A_TA at ``delay_ps`` reaches 0, the 1S window being the true line's centre +-
    HWHM.  NaN where it stays above 0 up to ``upper`` excitons/QD (front value).  What the measured-threshold
    estimator should find on this film, whatever the physics of A*(N, n)."""
    g_e, g_h = p["g_e"], p["g_h"]
    centre = HC_EV_NM / spectra.E1
    hwhm = centre**2 / HC_EV_NM * spectra.w1 / 2.0
    win = np.abs(spectra.lam - centre) <= hwhm
    table0 = sp.band_edge_table(0, g_e, g_h)[0]
    f_oc = _fractions(p, p["open_circuit_potential_V"])
    fr = _fractions(p, np.asarray(potentials, float))
    N = np.linspace(upper / n_grid, upper, n_grid)
    t = np.array([float(delay_ps)])
    out = []
    for f in np.atleast_2d(fr):
        dpre = (f @ table0 - f_oc @ table0) / (g_e * g_h)
        docc = (f - f_oc) @ (np.arange(g_e + 1) / g_e)
        A_pre = spectra.A0 + spectra.A1 * dpre + (spectra.pia - spectra.higher) * docc
        dA, _ = _film_response(p, spectra, N, np.repeat(f[None], N.size, axis=0), t, pump_OD)
        A = (A_pre[None, :] + dA[:, :, 0])[:, win].mean(axis=1)
        ratio = _depth_average_ratio(pump_OD) if pump_OD > 0 else 1.0
        if A_pre[win].mean() <= 0:
            out.append(0.0)
        elif not np.any(A <= 0):
            out.append(float("nan"))
        else:
            j = int(np.argmax(A <= 0))
            lo, a_lo = (N[j - 1], A[j - 1]) if j > 0 else (0.0, A_pre[win].mean())
            out.append(float(ratio * (lo + a_lo / (a_lo - A[j]) * (N[j] - lo))))
    return np.array(out)


# ----------------------------------------------------------------------------- writers
def _fmt_float(x):
    """12 significant digits (stable across platforms in the last ulp), always a TOML float."""
    x = float(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    s = "%.12g" % x
    return s if any(c in s for c in ".e") else s + ".0"


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _fmt_float(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k):
    k = str(k)
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else _toml_value(k)


def to_toml(data, _prefix=""):
    """Minimal TOML writer: scalars, nested tables and arrays of tables (lists of dicts)."""
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v, False))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v, True))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v, many in tables:
        name = f"{_prefix}{_toml_key(k)}"
        if many:
            for item in v:
                out += f"\n[[{name}]]\n" + to_toml(item, name + ".")
        else:
            out += f"\n[{name}]\n" + to_toml(v, name + ".")
    return out


def _matrix_csv(row_axis, col_axis, values, fmt, axis_fmt=("%.3f", "%.6g"), footer=()):
    """Helios layout: first row = '' + column axis (delays/potentials), then wavelength, values."""
    rfmt, cfmt = axis_fmt
    lines = ["," + ",".join(cfmt % c for c in col_axis)]
    for r, row in zip(row_axis, values):
        lines.append(rfmt % r + "," + ",".join(fmt % v for v in row))
    lines.extend(footer)
    return "\n".join(lines) + "\n"


def _spectrum_csv(lam, values, header, fmt="%.6e"):
    return header + "\n" + "\n".join(f"{l:.1f}," + fmt % v for l, v in zip(lam, values)) + "\n"


def _footer(seed, preset, what, scenario=None):
    made = f"preset={preset}" if scenario is None else f"scenario={scenario} preset={preset}"
    return (f"# {SYNTHETIC_NOTE}", f"# {made} seed={seed} bayesgain={__version__}", f"# {what}")


# ----------------------------------------------------------------------------- main entry
def simulate_experiment(out_dir, preset="batch-a", seed=0, overwrite=False, *, scenario=None, **overrides):
    """Write one SYNTHETIC experiment folder (``experiment.toml``, ``truth.toml``, CSV files).

    Parameters: ``out_dir`` (created; a non-empty existing folder is refused unless ``overwrite``;
    with ``overwrite`` a previous synthetic experiment there is removed first), ``preset`` (a key of
    :data:`PRESETS`), ``seed`` (``numpy.random.default_rng`` seed), ``scenario`` (a name recorded in
    truth.toml and the file footers; see :mod:`bayesgain.scenarios`), ``overrides`` (preset keys and
    :data:`KNOBS`).  truth.toml lists every knob when a scenario is named or a knob differs from the
    preset's value (the shipped presets' truth.toml predates the knobs).  Knob random numbers come
    from a second generator (``default_rng([seed, 1])``), so switching a knob leaves the other noise
    unchanged.  Returns the folder path.
    """
    p = preset_parameters(preset, **overrides)
    knobs = {k: p[k] for k in KNOBS}
    record_knobs = scenario is not None or knobs != preset_knobs(preset)
    seed = int(seed)
    out = _prepare_folder(out_dir, overwrite)
    sim = _Simulation(p, seed, preset, scenario)  # draws the design's random numbers first
    truth = sim.truth_header(record_knobs)
    files = sim.steady_state_files()
    entries = {}
    # the parts draw their noise in this order (solution TA, SEC, TR, film TA): keep it, or every file changes
    parts = {"solution": sim.solution_ta, "sec": sim.sec, "tr": sim.transient_reflection,
             "ta": lambda: sim.film_ta(record_knobs)}
    for key, part in parts.items():
        part_files, entries[key], part_truth = part()
        files.update(part_files)
        truth.update(part_truth)
    exp = sim.experiment_header(out.name)
    exp["solution"] = {"absorbance_file": "solution/absorbance.csv", "pump_absorbance": sim.pump_OD,
                       "ta": entries["solution"]}
    exp["film"] = {
        "absorptance_file": "film/absorptance.csv", "reflectance_file": "film/reflectance.csv",
        "open_circuit_potential_V": float(p["open_circuit_potential_V"]),
        "reference_electrode": "Ag pseudo-reference",
        "sec": entries["sec"], **({} if p["film_ta_reflection_corrected"] else {"tr": entries["tr"]}),
        "ta": entries["ta"],
    }
    _write_experiment(out, files, truth, exp, sim.made)
    return out


def _prepare_folder(out_dir, overwrite):
    """The output folder, created; a non-empty one only with ``overwrite`` (a previous simulation there removed)."""
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite=True to replace its contents")
        remove_simulated(out)  # only what a simulator wrote; a real experiment is refused
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_experiment(out, files, truth, exp, made):
    """Write the data files, truth.toml and experiment.toml atomically (experiment.toml last)."""
    header = f"# {SYNTHETIC_NOTE}\n# {made}\n"
    for name, text in sorted(files.items()):
        write_text_atomic(out / name, text)
    write_text_atomic(out / "truth.toml",
                      header + "# TRUE parameters of the simulation (units in names)\n" + to_toml(truth))
    write_text_atomic(out / "experiment.toml", header + to_toml(exp))


class _Simulation:
    """One simulated experiment: its grids, spectra, design and true random parameters, and one method per
    part of the folder.  Each part returns ``(files, its experiment.toml entries, its truth entries)``.

    ``rng`` draws every random number of the design and the noise, ``krng`` those of the mismatch knobs."""

    def __init__(self, p, seed, preset, scenario):
        self.p, self.seed, self.preset, self.scenario = p, seed, preset, scenario
        self.rng = np.random.default_rng(seed)
        self.krng = np.random.default_rng([seed, 1])
        made = f"preset={preset}" if scenario is None else f"scenario={scenario} preset={preset}"
        self.made = f"{made} seed={seed}"
        self._grids()
        self._optics()
        self._draw_design()

    def footer(self, what):
        return _footer(self.seed, self.preset, what, self.scenario)

    def _grids(self):
        """Probe and steady-state wavelengths, delays (linear, then logarithmic), SEC potentials, PL wavelengths."""
        p = self.p
        self.lam = np.linspace(p["probe_min_nm"], p["probe_max_nm"], p["n_wavelengths"])
        self.lam_ss = np.arange(p["steady_min_nm"], p["steady_max_nm"] + 0.5 * p["steady_step_nm"],
                                p["steady_step_nm"])
        lin = np.round(np.arange(p["delay_min_ps"], p["delay_linear_end_ps"] + 1e-9, p["delay_linear_step_ps"]),
                       6) + 0.0
        logd = np.geomspace(p["delay_linear_end_ps"] * 1.2, p["delay_max_ps"], p["n_log_delays"])
        self.delays = np.concatenate([lin, np.array([float("%.6g" % d) for d in logd])])
        n_sec = int(round(abs(p["sec_end_V"] - p["sec_start_V"]) / p["sec_step_V"])) + 1
        self.V_grid = np.round(np.linspace(p["sec_start_V"], p["sec_end_V"], n_sec), 4)
        self.lam_pl = np.linspace(p["pl_min_nm"], p["pl_max_nm"], p["n_pl_wavelengths"])
        self.lam_step = float(self.lam[1] - self.lam[0])

    def _optics(self):
        """Steady-state spectra of film and solution, the film's absorptance/reflectance, pump depth profiles."""
        p, lam, lam_ss = self.p, self.lam, self.lam_ss
        self.film = _Spectra(p, lam, p["film_1S_peak_OD"])
        film_ss = _Spectra(p, lam_ss, p["film_1S_peak_OD"])
        self.sol = _Spectra(p, lam, p["solution_1S_peak_OD"], p["solution_1S_blue_shift_meV"])
        self.sol_ss = _Spectra(p, lam_ss, p["solution_1S_peak_OD"], p["solution_1S_blue_shift_meV"])
        self.F_A, self.F_R = _reflectance(p, lam, self.film.A0)
        self.F_A_ss, self.F_R_ss = _reflectance(p, lam_ss, film_ss.A0)
        self.pump_OD = float("%.4f" % np.interp(p["pump_wavelength_nm"], lam_ss, self.sol_ss.A0))
        self.noise_scale = _probe_noise_scale(p, lam)
        self.depth_ratio = _depth_average_ratio(self.pump_OD)
        self.film_pump_OD = (float(np.interp(p["pump_wavelength_nm"], lam_ss, film_ss.A0))
                             if p["pump_attenuation"] else 0.0)
        self.film_depth_ratio = _depth_average_ratio(self.film_pump_OD)
        self.f_oc = _fractions(p, p["open_circuit_potential_V"])

    def _draw_design(self):
        """Nominal fluences and potentials, then the true random parameters (drawn first, in a fixed order)."""
        p = self.p
        sigma = p["cross_section_400nm_cm2"]
        sol_targets = _floats(p["solution_mean_excitons"])
        self.film_targets = _floats(p["film_mean_excitons"])
        self.potentials = _solve_potentials(p, _floats(p["film_mean_electrons"]))
        self.sol_J_nom = np.array([float("%.3g" % (m / (sigma * self.depth_ratio))) for m in sol_targets])
        self.film_J_nom = np.array([float("%.3g" % (m / sigma)) for m in self.film_targets])
        self.sol_err = self.rng.normal(0.0, p["fluence_log_sd"], sol_targets.size)
        self.tr_err = self.rng.normal(0.0, p["fluence_log_sd"], self.film_targets.size)
        self.ta_err = self.rng.normal(0.0, p["fluence_log_sd"], (self.potentials.size, self.film_targets.size))
        self.drift = self.rng.normal(0.0, p["sec_drift_sd_V"], p["sec_cycles"])
        self.sol_N = sigma * self.depth_ratio * self.sol_J_nom * np.exp(self.sol_err)
        self.film_sigma = p["film_cross_section_ratio"] * sigma
        self.tr_N = self.film_sigma * self.film_J_nom * np.exp(self.tr_err)
        self.ta_N = self.film_sigma * self.film_J_nom[None, :] * np.exp(self.ta_err)
        self.frac_ta = _fractions(p, self.potentials)

    def truth_header(self, record_knobs):
        """truth.toml's scalars: the parameters (knobs only when recorded) and what follows from them."""
        p = self.p
        truth = {
            "note": SYNTHETIC_NOTE + "; these are the TRUE parameters of the simulation",
            **({"scenario": self.scenario} if self.scenario is not None else {}),
            "preset": self.preset, "seed": self.seed, "generator": f"bayesgain.simulate {__version__}",
            **{k: v for k, v in p.items() if k not in KNOBS or record_knobs},
            # the form of hole trapping is part of the truth wherever there is any (a model of the other form misses it)
            **({"hole_trap_form": p["hole_trap_form"]} if p["hole_trap_fraction"] > 0 and not record_knobs else {}),
            "k_xx_per_ps": 1.0 / p["tau_xx_ps"], "k_x_per_ps": 1.0 / p["tau_x_ps"],
            "film_cross_section_400nm_cm2": self.film_sigma,
            "solution_pump_absorbance_OD": self.pump_OD,
            "solution_depth_average_ratio": self.depth_ratio,
            "film_1S_peak_eV": self.film.E1, "solution_1S_peak_eV": self.sol.E1,
        }
        if record_knobs:
            truth["film_pump_absorbance_OD"] = self.film_pump_OD
            truth["film_depth_average_ratio"] = self.film_depth_ratio
        return truth

    def experiment_header(self, name):
        """experiment.toml's name, description, sample and pump."""
        p, scenario = self.p, self.scenario
        return {
            "name": name,
            "synthetic": True,
            "description": (f"SYNTHETIC experiment generated by bayesgain.simulate.simulate_experiment with seed "
                            f"{self.seed} " + (f"for scenario {scenario!r} " if scenario is not None else "")
                            + f"and preset {self.preset!r} ({p['label']}); not a measurement. truth.toml holds the "
                            f"true parameters."),
            "sample": {"g_e": p["g_e"], "g_h": p["g_h"], "temperature_K": p["temperature_K"],
                       "film_thickness_nm": p["film_thickness_nm"],
                       "film_thickness_sd_nm": p["film_thickness_sd_nm"]},
            "pump": {"wavelength_nm": p["pump_wavelength_nm"]},
        }

    def steady_state_files(self):
        """Solution absorbance, film absorptance and reflectance on the steady-state grid."""
        return {
            "solution/absorbance.csv": _spectrum_csv(self.lam_ss, self.sol_ss.A0, "wavelength_nm,absorbance_OD"),
            "film/absorptance.csv": _spectrum_csv(self.lam_ss, self.F_A_ss, "wavelength_nm,absorptance_fraction"),
            "film/reflectance.csv": _spectrum_csv(self.lam_ss, self.F_R_ss, "wavelength_nm,reflectance_fraction"),
        }

    def _ta_noise(self):
        """TA noise of one file (L, T): white (probe-scaled) plus a baseline offset per delay, then the knobs'."""
        p, lam, delays = self.p, self.lam, self.delays
        noise = (self.rng.normal(0.0, 1.0, (lam.size, delays.size)) * p["noise_OD"] * self.noise_scale[:, None]
                 + self.rng.normal(0.0, p["baseline_noise_OD"], delays.size)[None, :])
        if p["correlated_noise_OD"] > 0 or p["baseline_jitter_OD"] > 0:
            noise = noise + _correlated_noise(p, self.krng, lam.size, delays.size, self.lam_step)
        return noise

    def solution_ta(self):
        """Solution TA, one file per fluence (neutral QDs, no reflection)."""
        p, sol_N = self.p, self.sol_N
        f_neutral = np.zeros((sol_N.size, p["g_e"] + 1))
        f_neutral[:, 0] = 1.0
        dA = _delta_A(p, self.sol, excited_state(sol_N, f_neutral, self.delays, p), self.delays, sol_N)
        files, entries = {}, []
        true_N, true_err, true_J = {}, {}, {}
        for i in range(sol_N.size):
            noise = self._ta_noise()
            name = f"solution/ta/ta_F{i + 1:02d}.csv"
            files[name] = _matrix_csv(self.lam, self.delays, dA[i] + noise, "%.4e", footer=self.footer(
                f"solution TA, nominal fluence {self.sol_J_nom[i]:.4g} photons/cm2, Delta A in OD"))
            entries.append({"file": name, "fluence_photons_cm2": float(self.sol_J_nom[i])})
            true_N[name], true_err[name] = float(sol_N[i]), float(self.sol_err[i])
            true_J[name] = float(self.sol_J_nom[i] * np.exp(self.sol_err[i]))
        truth = {"solution_ta_true_mean_excitons": true_N, "solution_ta_fluence_log_error": true_err,
                 "solution_ta_true_fluence_photons_cm2": true_J,
                 "solution_threshold_t0_mean_excitons": float(_threshold_eta(p, f_neutral[:1])[0])}
        return files, entries, truth

    def sec(self):
        """SEC absorption and PL, every cycle forward and backward: every sweep is simulated (same random
        numbers), only the directions of ``sec_directions`` are written."""
        p = self.p
        written = [d.strip() for d in p["sec_directions"].split(",")]
        pl_shapes = self._pl_shapes()
        files, entries, drift_within = {}, [], {}
        for c in range(p["sec_cycles"]):
            for direction in ("forward", "backward"):
                Vs = self.V_grid if direction == "forward" else self.V_grid[::-1]
                V_eff = self._sec_film_potential(Vs, c, direction, drift_within)
                fr = _fractions(p, V_eff)
                keep = (1.0 - p["sec_bleach_loss_per_cycle"]) ** c
                absorption = self._sec_absorption(fr, keep)
                pl = self._sec_pl(fr, keep, pl_shapes)
                if direction in written:
                    files.update(self._sec_files(c, direction, Vs, absorption, pl, entries))
        truth = {"sec_drift_V": {f"cycle{c + 1}": float(self.drift[c]) for c in range(p["sec_cycles"])}}
        if drift_within:
            truth["sec_drift_within_sweep_end_V"] = drift_within
        return files, entries, truth

    def _pl_shapes(self):
        """Emission line shapes on the PL grid of the neutral QD, the trion and the doubly charged QD."""
        p = self.p
        E_pl = HC_EV_NM / self.lam_pl
        E_X = self.film.E1 - p["pl_stokes_meV"] * 1e-3
        w_pl = p["pl_fwhm_meV"] * 1e-3
        pl_x = _gauss(E_pl, E_X, w_pl)
        pl_tr = _gauss(E_pl, E_X + p["pl_trion_shift_meV"] * 1e-3, w_pl)
        pl_tt = 0.6 * _gauss(E_pl, E_X + 1.3 * p["pl_trion_shift_meV"] * 1e-3, w_pl) + \
            0.4 * _gauss(E_pl, E_X + p["pl_tetron_blue_shift_meV"] * 1e-3, 1.3 * w_pl)
        return pl_x, pl_tr, pl_tt

    def _sec_film_potential(self, Vs, c, direction, drift_within):
        """The film's potential during one sweep: lag, the cycle's drift, hysteresis and (knob) a drift within it."""
        p = self.p
        sign = 0.5 if direction == "forward" else -0.5
        V_eff = _lagged(Vs, p["sec_lag_steps"]) + self.drift[c] + sign * p["sec_hysteresis_V"]
        if p["sec_drift_within_sweep_V"] > 0:
            d_end = self.krng.normal(0.0, p["sec_drift_within_sweep_V"])
            V_eff = V_eff + d_end * np.linspace(0.0, 1.0, Vs.size)
            drift_within[f"cycle{c + 1}_{direction}"] = float(d_end)
        return V_eff

    def _sec_absorption(self, fr, keep):
        """Noisy Delta A_SEC (L, V) against open circuit for the charge fractions ``fr`` of one sweep."""
        p, film, g_e = self.p, self.film, self.p["g_e"]
        table0 = sp.band_edge_table(0, g_e, p["g_h"])[0]
        gg = g_e * p["g_h"]
        dpre = (fr @ table0 - self.f_oc @ table0) / gg  # (V,)
        docc = (fr - self.f_oc) @ (np.arange(g_e + 1) / g_e)
        dsec = (film.A1[:, None] * dpre[None, :] - film.higher[:, None] * docc[None, :]
                + film.pia[:, None] * docc[None, :])
        if keep != 1.0:
            dsec = dsec * keep
        noise = (self.rng.normal(0.0, 1.0, dsec.shape) * p["sec_noise_OD"] * self.noise_scale[:, None]
                 + self.rng.normal(0.0, p["sec_baseline_noise_OD"], fr.shape[0])[None, :])
        return dsec + noise

    def _sec_pl(self, fr, keep, pl_shapes):
        """Noisy PL counts (emission wavelength, V) for the charge fractions ``fr`` of one sweep."""
        p = self.p
        pl_x, pl_tr, pl_tt = pl_shapes
        emission = (fr[:, 0][None, :] * pl_x[:, None] + p["pl_q1"] * fr[:, 1][None, :] * pl_tr[:, None]
                    + p["pl_q2"] * fr[:, 2][None, :] * pl_tt[:, None])
        if keep != 1.0:
            emission = emission * keep
        pl = p["pl_peak_counts"] * emission + p["pl_dark_counts"]
        pl = pl + self.rng.normal(0.0, 1.0, pl.shape) * np.sqrt(pl + p["pl_read_noise_counts"] ** 2)
        return np.maximum(pl, 0.0)

    def _sec_files(self, c, direction, Vs, absorption, pl, entries):
        """The absorption and PL files of one sweep (their experiment.toml entries appended to ``entries``)."""
        files = {}
        name = f"film/sec/abs_cycle{c + 1}_{direction}.csv"
        files[name] = _matrix_csv(self.lam, Vs, absorption, "%.4e", axis_fmt=("%.3f", "%.4f"), footer=self.footer(
            f"SEC absorption, cycle {c + 1} {direction}, Delta A_SEC in OD vs open circuit; row 0 = potential V"))
        entries.append({"file": name, "kind": "absorption", "cycle": c + 1, "direction": direction})
        name = f"film/sec/pl_cycle{c + 1}_{direction}.csv"
        files[name] = _matrix_csv(self.lam_pl, Vs, pl, "%.1f", axis_fmt=("%.3f", "%.4f"),
                                  footer=self.footer(f"SEC photoluminescence, cycle {c + 1} {direction}, counts; "
                                                     "column 0 = emission wavelength nm; row 0 = potential V"))
        entries.append({"file": name, "kind": "photoluminescence", "cycle": c + 1, "direction": direction})
        return files

    def transient_reflection(self):
        """Film TR at open circuit, one file per fluence (noise drawn even where no TR is written)."""
        p, film, tr_N, delays = self.p, self.film, self.tr_N, self.delays
        f_oc_rows = np.repeat(np.atleast_2d(self.f_oc), tr_N.size, axis=0)
        if self.film_pump_OD > 0:
            _, dR = _film_response(p, film, tr_N, f_oc_rows, delays, self.film_pump_OD)
        else:
            dR = _delta_R(p, film, excited_state(tr_N, f_oc_rows, delays, p), delays)
        write_tr = not p["film_ta_reflection_corrected"]  # labs export corrected TA without the TR it needed
        tr_noise_scale = self.noise_scale * np.sqrt(p["reflectance_mean"] / (self.F_R / 10.0 ** (-film.A0)))
        files, entries, true_N, true_err = {}, [], {}, {}
        for j in range(tr_N.size):
            noise = (self.rng.normal(0.0, 1.0, (self.lam.size, delays.size)) * p["tr_noise_OD"]
                     * tr_noise_scale[:, None])
            if not write_tr:
                continue
            name = f"film/tr/tr_F{j + 1:02d}.csv"
            files[name] = _matrix_csv(self.lam, delays, dR[j] + noise, "%.4e", footer=self.footer(
                f"film transient reflection at open circuit, nominal fluence {self.film_J_nom[j]:.4g} photons/cm2, "
                "Delta R in OD"))
            entries.append({"file": name, "potential_V": float(p["open_circuit_potential_V"]),
                            "fluence_photons_cm2": float(self.film_J_nom[j])})
            true_N[name] = float(tr_N[j] * self.film_depth_ratio) if self.film_pump_OD > 0 else float(tr_N[j])
            true_err[name] = float(self.tr_err[j])
        if not write_tr:
            return files, entries, {}
        return files, entries, {"film_tr_true_mean_excitons": true_N, "film_tr_fluence_log_error": true_err}

    def film_ta(self, record_knobs):
        """Film TA (raw extinction Delta A*, or Delta A with ``film_ta_reflection_corrected``) at each potential
        and fluence."""
        p, potentials, n_F = self.p, self.potentials, self.film_targets.size
        frows = np.repeat(self.frac_ta, n_F, axis=0)
        dA_ta, dR_ta = _film_response(p, self.film, self.ta_N.reshape(-1), frows, self.delays, self.film_pump_OD)
        corrected = p["film_ta_reflection_corrected"]
        dA_star = dA_ta if corrected else _extinction(dA_ta, dR_ta, self.F_A[None, :, None], self.F_R[None, :, None])
        kind = ("film TA (reflection corrected, Delta A in OD)" if corrected
                else "film TA (raw extinction, NOT reflection corrected)")
        files, entries, true_N, true_err, true_front = {}, [], {}, {}, {}
        for i, V in enumerate(potentials):
            for j in range(n_F):
                noise = self._ta_noise()
                name = f"film/ta/ta_V{V:+.3f}_F{j + 1:02d}.csv"
                files[name] = _matrix_csv(self.lam, self.delays, dA_star[i * n_F + j] + noise, "%.4e",
                                          footer=self.footer(f"{kind} at {V:.3f} V, nominal fluence "
                                                             f"{self.film_J_nom[j]:.4g} photons/cm2"
                                                             + ("" if corrected else ", Delta A* in OD")))
                entries.append({"file": name, "potential_V": float(V),
                                "fluence_photons_cm2": float(self.film_J_nom[j]),
                                "reflection_corrected": bool(corrected)})
                true_err[name] = float(self.ta_err[i, j])
                # with pump attenuation the <N> the probe sees is the depth average; the front value is kept too
                true_N[name] = (float(self.ta_N[i, j] * self.film_depth_ratio) if self.film_pump_OD > 0
                                else float(self.ta_N[i, j]))
                true_front[name] = float(self.ta_N[i, j])
        truth = {"film_ta_true_mean_excitons": true_N}
        if self.film_pump_OD > 0:
            truth["film_ta_front_mean_excitons"] = true_front
        truth["film_ta_fluence_log_error"] = true_err
        ne_ta = sp.mean_electrons(self.frac_ta)
        truth["film_ta_mean_electrons"] = {f"{V:+.3f}V": float(ne_ta[i]) for i, V in enumerate(potentials)}
        truth.update(self._film_thresholds(record_knobs))
        return files, entries, truth

    def _film_thresholds(self, record_knobs):
        """True t = 0 gain thresholds per potential and (knobs recorded) the window threshold a measurement finds."""
        p, potentials = self.p, self.potentials
        thr = _threshold_eta(p, self.frac_ta)
        truth = {"film_threshold_t0_mean_excitons": {f"{V:+.3f}V": float(t) for V, t in zip(potentials, thr)}}
        if record_knobs:
            # what a measured threshold (window A* at the measured delay nearest 5 ps crossing 0) should find
            d5 = float(self.delays[np.argmin(np.abs(self.delays - 5.0))])
            wt = window_thresholds(p, self.film, potentials, d5, self.film_pump_OD)
            truth["film_threshold_window_delay_ps"] = d5
            truth["film_threshold_window_mean_excitons"] = {f"{V:+.3f}V": float(t) for V, t in zip(potentials, wt)}
        return truth
