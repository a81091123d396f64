"""Named SYNTHETIC mismatch scenarios: a simulator preset plus knobs, one per way a real film departs
from the inference model (``docs/mismatch-scenarios.md``).

Every scenario uses the design and grids of preset ``batch-a`` (same wavelengths, delays, fluences,
potentials and SEC sweeps), so a joint fit of one scenario costs what a fit of batch A costs.
``matched`` is the reference: the model's assumptions hold (no biexciton line shift, so the model's
window-shift loss kappa is 0 in truth; no 2S tail; instant cooling; log-normal per-file fluence
calibrations with sd 0.05 as the model's hierarchical prior assumes; white noise plus per-delay
offsets; SEC drift and hysteresis as constant offsets per sweep, which the model's sweep offsets
absorb; raw TA with TR).  Each other scenario changes one thing against ``matched``, except
``lab-export``, which combines what an independent lab's export looks like.

``simulate_scenario(name, out_dir, seed)`` writes the folder; truth.toml records ``scenario`` and
every knob.  The same name, seed and overrides give byte-identical files.
"""

from dataclasses import dataclass, field

from .simulate import preset_parameters, simulate_experiment

__all__ = ["Scenario", "SCENARIOS", "scenario_names", "scenario_parameters", "simulate_scenario"]


@dataclass(frozen=True)
class Scenario:
    """A preset plus overrides; ``not_shared`` says what the inference model does not share."""

    name: str
    summary: str
    not_shared: str
    overrides: dict = field(default_factory=dict)
    preset: str = "batch-a"


_MATCHED = dict(biexciton_shift_meV=0.0)

_LIST = [
    Scenario("matched", "the model's assumptions hold", "nothing (reference for coverage and SBC)", {}),
    Scenario("calibration-spread-0", "true fluence = nominal fluence for every file (fluence_log_sd = 0)",
             "the model's per-file calibration spread is a free scale whose truth is 0 (the funnel's edge)",
             dict(fluence_log_sd=0.0)),
    Scenario("calibration-spread-20", "per-file fluence calibration error of 20 % (fluence_log_sd = 0.2)",
             "nothing in form; a wide spread leaves each file's <N> pinned only by its own data",
             dict(fluence_log_sd=0.2)),
    Scenario("band-2s-tail", "a 2S/higher-band bleach tail inside the 1S window, decaying in 100 ps",
             "the model's window bleach follows only transition counting and the 1S(e) occupancy; this tail "
             "has its own clock (in the 1S window ~6 % of the 1S peak OD per excited QD)",
             dict(tail_2s_fraction=0.2, tail_2s_fwhm_meV=250.0, tail_2s_tau_ps=100.0)),
    Scenario("no-single-exciton-decay", "single excitons never decay (k_x = 0, tau_x = inf)",
             "the model's tau_x prior (median 20 ns) has no mass at infinity", dict(tau_x_ps=float("inf"))),
    Scenario("hot-carrier-cooling", "hot carriers fill 1S with a 0.5 ps time constant (1.8 % unfilled at 2 ps)",
             "the model's band edge is filled at t = 0", dict(cooling_time_ps=0.5)),
    Scenario("blue-biexciton", "the excited 1S line shifts to the blue by 20 meV x^2 (paper: up to ~20 meV)",
             "only in part: the model's kappa x^4 loss of the window average is the small-shift form of a line "
             "shifting by ~x^2; the line's shape within the window is not modelled",
             dict(biexciton_shift_meV=20.0, biexciton_shift_direction="blue")),
    Scenario("pump-attenuation", "the pump decays through the film (Beer-Lambert; film OD at 400 nm ~0.04)",
             "the model has one <N> per file; here <N> falls ~8 % from front to back (truth stores the depth "
             "average, film_ta_true_mean_excitons, and the front value)", dict(pump_attenuation=True)),
    Scenario("correlated-noise", "TA noise correlated over 15 nm of wavelength plus a per-delay baseline offset "
             "and tilt", "the window SEMs assume independent wavelengths; correlated noise makes them too small",
             dict(correlated_noise_OD=1.0e-4, correlated_noise_length_nm=15.0, baseline_jitter_OD=5.0e-5)),
    Scenario("sec-hysteresis-drift", "SEC potential lags the sweep (2 steps), drifts within each sweep (sd 15 mV), "
             "larger offsets (drift sd 15 mV, hysteresis 30 mV) and 3 % signal loss per cycle",
             "the model's sweep offsets are constant per sweep and its SEC scale is shared by all cycles",
             dict(sec_drift_sd_V=0.015, sec_hysteresis_V=0.030, sec_drift_within_sweep_V=0.015, sec_lag_steps=2.0,
                  sec_bleach_loss_per_cycle=0.03)),
    Scenario("charged-extra-emission", "charged QDs emit more than transition counting says: every exciton in a "
             "QD holding injected electrons adds 2 gamma of stimulated emission (A*(1, 1) = -4 instead of -2)",
             "transition counting's A*(N, n): the real thresholds of charged films lie below the prediction "
             "(0.81 against 1.06 excitons/QD at <n_e> = 0.94, the paper's 0.80 against 1.06); truth.toml stores "
             "them as film_threshold_window_mean_excitons",
             dict(charged_extra_emission=2.0)),
    Scenario("lab-export", "an independent lab's export: reflection-corrected film TA and no TR, SEC forward "
             "sweeps only, true fluence = nominal, a 2S tail in the window, no single-exciton decay, blue "
             "biexciton shift",
             "the 2S tail's own clock, tau_x = inf, the calibration spread's truth 0, and no TR to fit a "
             "reflection component with",
             dict(film_ta_reflection_corrected=True, sec_directions="forward", fluence_log_sd=0.0,
                  tail_2s_fraction=0.2, tail_2s_fwhm_meV=250.0, tail_2s_tau_ps=100.0, tau_x_ps=float("inf"),
                  biexciton_shift_meV=20.0, biexciton_shift_direction="blue")),
]

SCENARIOS = {s.name: Scenario(s.name, s.summary, s.not_shared, {**_MATCHED, **s.overrides}, s.preset)
             for s in _LIST}
"""Registry: name -> :class:`Scenario` (its ``overrides`` already include the matched baseline)."""


def scenario_names():
    """Names of the registered scenarios, in the order of the table in docs/mismatch-scenarios.md."""
    return list(SCENARIOS)


def _scenario(name):
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {scenario_names()}")
    return SCENARIOS[name]


def scenario_parameters(name, **overrides):
    """Every simulator parameter and knob of scenario ``name`` with ``overrides`` applied."""
    s = _scenario(name)
    return preset_parameters(s.preset, **{**s.overrides, **overrides})


def simulate_scenario(name, out_dir, seed=0, overwrite=False, **overrides):
    """Write the SYNTHETIC experiment folder of scenario ``name`` (seeded; truth.toml names the scenario
    and lists every knob).  ``overrides``: simulator preset keys or knobs on top of the scenario's.
    Returns the folder path."""
    s = _scenario(name)
    return simulate_experiment(out_dir, preset=s.preset, seed=seed, overwrite=overwrite, scenario=name,
                               **{**s.overrides, **overrides})

