"""Physical constants (CODATA 2018, exact where defined) used across the physics modules."""

BOLTZMANN_EV_PER_K = 8.617333262e-5  # k_B in eV/K
PLANCK_J_S = 6.62607015e-34  # h in J s
SPEED_OF_LIGHT_M_S = 299792458.0  # c in m/s
LN10 = 2.302585092994046
