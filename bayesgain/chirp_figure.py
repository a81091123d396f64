"""The chirp correction drawn: the uncorrected TA map near time zero with t0(lambda) on it.

One drawing for ``bayesgain check FOLDER --figures DIR`` (from the experiment's ``/chirp`` node)
and for the fit report (from the reduced data's attrs, :func:`bayesgain.io.chirp.chirp_map_attrs`):
a diverging map of the first chirp-corrected TA entry (wavelength x delay, before the correction),
the chirp curve t0(lambda) over it, and +-3 IRF sigma around it when an IRF width was fitted.
A chirp that follows the rise of the signal at every wavelength is right.
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ._atomic import atomic_path  # noqa: E402
from .io.experiment import IRF_CLEARANCE_SIGMAS  # noqa: E402

__all__ = ["CHIRP_FIGURE_NAME", "draw_chirp_map", "chirp_figure", "write_chirp_figure"]

CHIRP_FIGURE_NAME = "chirp.png"
DPI = 200


def draw_chirp_map(ax, ds) -> None:
    """``ds`` (:func:`bayesgain.io.chirp.chirp_map`): the map, t0(lambda), and the IRF band on ``ax``."""
    lam = np.asarray(ds["wavelength"].values, float)
    t = np.asarray(ds["delay"].values, float)
    z = np.asarray(ds["dA_uncorrected"].values, float)
    lim = float(np.nanpercentile(np.abs(z), 99)) if np.isfinite(z).any() else 1.0
    norm = mcolors.TwoSlopeNorm(vcenter=0.0, vmin=-(lim or 1.0), vmax=lim or 1.0)
    mesh = ax.pcolormesh(lam, t, z.T, cmap="RdBu_r", norm=norm, shading="nearest", rasterized=True)
    units = ds["dA_uncorrected"].attrs.get("units", "")
    ax.figure.colorbar(mesh, ax=ax, label=f"dA ({units})" if units else "dA")
    grid = np.linspace(lam.min(), lam.max(), 200)
    t0 = np.polyval(np.asarray(ds.attrs["chirp_coefficients_ps"], float), grid)
    ax.plot(grid, t0, color="k", lw=1.6, label="chirp t0(lambda)")
    sigma = ds.attrs.get("irf_sigma_ps")
    if sigma is not None:
        k = IRF_CLEARANCE_SIGMAS
        ax.plot(grid, t0 - k * sigma, color="k", lw=0.8, ls="--",
                label=f"t0 +- {k:g} IRF sigma ({float(sigma):.3g} ps)")
        ax.plot(grid, t0 + k * sigma, color="k", lw=0.8, ls="--")
    ax.set_xlim(lam.min(), lam.max())
    ax.set_ylim(t.min(), t.max())
    ax.set_xlabel("probe wavelength (nm)")
    ax.set_ylabel("delay before the chirp correction (ps)")
    ax.legend(loc="upper right", fontsize=7.5)
    ax.set_title(f"{ds.attrs.get('chirp_file', '')}: {ds.attrs.get('chirp_source', '')}", fontsize=8.5)


def chirp_figure(ds, title: str, synthetic: bool = False):
    """A figure with :func:`draw_chirp_map`; ``synthetic`` says so in the title and a footnote."""
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    draw_chirp_map(ax, ds)
    if synthetic:
        fig.suptitle(f"SYNTHETIC DATA -- {title}", fontsize=11, color="firebrick", fontweight="bold")
        fig.text(0.5, 0.005, "SYNTHETIC data (bayesgain.simulate): not a measurement", ha="center", va="bottom",
                 fontsize=7.5, color="firebrick")
    else:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def write_chirp_figure(tree, out_dir) -> pathlib.Path | None:
    """``chirp.png`` of an experiment DataTree into ``out_dir`` (atomically); None without a chirp."""
    if "chirp" not in tree.children:
        return None
    ds = tree["chirp"].to_dataset()
    name = tree.attrs.get("name", "experiment")
    fig = chirp_figure(ds, f"chirp correction -- {name}", bool(tree.attrs.get("synthetic", False)))
    path = pathlib.Path(out_dir) / CHIRP_FIGURE_NAME
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path
