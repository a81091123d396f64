"""Independent plain-loop references written straight from the SI equations (no PyTensor, no vectorisation)."""

import math

import numpy as np
from scipy import integrate

K_B = 8.617333262e-5


def band_edge(N, n, g_e=2, g_h=4):
    # eq. S6: open absorption transitions minus stimulated-emission transitions
    absorb = max(g_h - N, 0) * max(g_e - N - n, 0)
    emit = min(N, g_h) * min(N + n, g_e)
    return absorb - emit


def band_edge_trapped(N, n, g_e=2, g_h=4):
    # eq. S6 counted with one of the N holes trapped off the band edge (N >= 1); the electrons all stay
    holes = max(N - 1, 0)
    electrons = N + n
    absorb = max(g_h - holes, 0) * max(g_e - electrons, 0)
    emit = min(holes, g_h) * min(electrons, g_e)
    return absorb - emit


def poisson(N, mean):
    return math.exp(-mean) * mean**N / math.factorial(N)


def ensemble(mean, fractions, g_e=2, g_h=4, n_max=80):
    total = 0.0
    for n, f_n in enumerate(fractions):
        for N in range(n_max + 1):
            total += f_n * poisson(N, mean) * band_edge(N, n, g_e, g_h)
    return total


def fractions(V, V1S, VC=0.0, T=293.0, g_e=2):
    beta = 1.0 / (K_B * T)
    w = []
    for n in range(g_e + 1):
        energy = n * (V - V1S) + VC * n * (n - 1) / 2
        w.append(math.comb(g_e, n) * math.exp(-beta * energy))
    z = sum(w)
    return [x / z for x in w]


def fractions_disordered(V, V1S, VC, sigma, T=293.0, g_e=2):
    out = []
    for n in range(g_e + 1):
        integrand = lambda v: fractions(V, v, VC, T, g_e)[n] * math.exp(-0.5 * ((v - V1S) / sigma) ** 2) / (
            sigma * math.sqrt(2 * math.pi))
        val, _ = integrate.quad(integrand, V1S - 10 * sigma, V1S + 10 * sigma, points=[V], limit=400,
                                epsabs=1e-13, epsrel=1e-12)
        out.append(val)
    return out


def fractions_uniform(mean_electrons, g_e=2):
    """Uniform doping, straight from its statement: floor(<n_e>) electrons in a fraction 1 - frac of the QDs,
    ceil(<n_e>) in the rest."""
    m = min(max(float(mean_electrons), 0.0), float(g_e))
    lo = int(np.floor(m))
    f = np.zeros(g_e + 1)
    f[lo] = 1.0 - (m - lo)
    if lo < g_e:
        f[lo + 1] = m - lo
    return f


def auger_count(N, n):
    e, h = N + n, N
    return e * h * (max(e - 1, 0) + max(h - 1, 0))


def rate(N, n, k_xx, k_x=0.0):
    return k_xx / 8 * auger_count(N, n) + N * k_x


def rate_trapped(N, n, k_xx, k_x=0.0):
    # Auger events need band-edge holes: the trapped one takes no part
    e, h = N + n, max(N - 1, 0)
    return k_xx / 8 * e * h * (max(e - 1, 0) + max(h - 1, 0)) + N * k_x


def cascade_ode(mean, fractions_, delays, k_xx, k_x=0.0, g_e=2, g_h=4, n_max=45, solver="expm", hole_trap=0.0,
                charged_emission=0.0):
    """Solve eq. S19 for every n and sum eq. S17 at each delay.

    eq. S19 is linear with constant rates, dP/dt = K P (K bidiagonal); ``solver="expm"`` takes its exact
    solution P(t) = exp(K t) P(0) with scipy's matrix exponential (Pade, no Bateman closed form), ``"radau"``
    integrates it with solve_ivp at tight tolerances (the two agree to ~3e-13; Radau is ~20x slower).
    ``hole_trap``: that fraction of the QDs has one photo-excited hole trapped from t = 0 (own rates and counting).
    ``charged_emission``: c extra emitting transitions per band-edge exciton of a charged QD (n >= 1).
    """
    from scipy import linalg

    out = np.zeros(len(delays))
    chains = [(n, f_n * (1 - hole_trap), rate, band_edge) for n, f_n in enumerate(fractions_)]
    if hole_trap:
        chains += [(n, f_n * hole_trap, rate_trapped, band_edge_trapped) for n, f_n in enumerate(fractions_)]
    for n, f_n, rate_fn, count in chains:
        if f_n == 0:
            continue
        y0 = np.array([f_n * poisson(N, mean) for N in range(n_max + 1)])
        k = np.array([rate_fn(N, n, k_xx, k_x) for N in range(n_max + 1)])
        K = np.diag(-k) + np.diag(k[1:], 1)  # dP_N/dt = -k_N P_N + k_{N+1} P_{N+1}
        if solver == "expm":
            y = np.stack([linalg.expm(K * t) @ y0 for t in delays], axis=1)
        else:
            y = integrate.solve_ivp(lambda t, y: K @ y, (0, max(delays)), y0, t_eval=delays, method="Radau",
                                    rtol=1e-12, atol=1e-15, jac=K).y
        A = np.array([count(N, n, g_e, g_h) - charged_emission * min(N, g_h) * (n >= 1) for N in range(n_max + 1)])
        out += A @ y
    return out
