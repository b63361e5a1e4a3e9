"""Steady-state laser rate equations with a spontaneous-emission factor beta (the S-curve).

Model (Bjork & Yamamoto 1991 form, no transparency term), carriers N, photons s in the lasing mode:
    dN/dt = P - N/tau_sp - beta N s / tau_sp
    ds/dt = beta N (s + 1) / tau_sp - s / tau_p
Steady state, with u = P tau_p:  u = s (1 + beta s) / (beta (1 + s)).
For s >> 1, u ~ s + (1 - beta)/beta: the above-threshold branch is a straight line that extrapolates
to zero output at u_th = (1 - beta)/beta. We call *that* pump the threshold F_th, so the S-curve fit
and the two-segment linear fit report the same quantity (the one experimentalists quote). The
mean-photon-number-one point of Bjork & Yamamoto lies at u = (1 + beta)/(2 beta), i.e. ~F_th/2 for
small beta. The log-log jump between the two linear branches is ~1/beta.
"""

from __future__ import annotations

import numpy as np


def photon_number(fluence, threshold, beta, transparency=0.0):
    """Mean photon number s(F) for F_th defined by the extrapolated above-threshold line.

    Vectorised over all arguments; stable for beta down to 1e-8 (conjugate root form).
    `transparency` = beta N_tr (0 <= . < 1): with a transparency density the gain is beta (N - N_tr),
    and the steady state is s^2 + b s - p = 0, b = 1 + c (1 - beta) - p, c = 1/beta + N_tr,
    p = (F/F_th) c (1 - beta) (still the extrapolated-line threshold); below threshold the mode's
    output is then superlinear (absorption bleaching), which sharpens the kink. 0 gives the form above.
    """
    tr = np.asarray(transparency, dtype=np.float64)
    if np.any(tr != 0):
        f = np.asarray(fluence, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64)
        c = (1.0 + tr) / beta
        p = np.clip(f / threshold, 0.0, None) * c * (1.0 - beta)
        b = 1.0 + c * (1.0 - beta) - p
        root = np.sqrt(b * b + 4.0 * p)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, 2.0 * p / (b + root), (root - b) / 2.0)
    f = np.asarray(fluence, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    u = np.clip(f / threshold, 0.0, None) * (1.0 - beta) / beta
    b = 1.0 - u * beta
    disc = np.sqrt(b * b + 4.0 * beta * beta * u)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = 2.0 * u * beta / (b + disc)  # b > 0
        neg = (disc - b) / (2.0 * beta)  # b <= 0
    return np.where(b > 0, pos, neg)


def light_out(fluence, threshold, beta, scale=1.0):
    """Output ~ scale * beta * s: slope ~1 (x scale/F_th) above threshold, ~beta below."""
    return scale * beta * photon_number(fluence, threshold, beta)


def light_out_bg(fluence, threshold, beta, scale=1.0, kappa=0.0, transparency=0.0):
    """Lasing-mode output plus collected spontaneous emission from all other modes.

    The rate equations give N/tau_sp = s / (beta tau_p (1 + s)): spontaneous emission clamps with the
    carrier density. Collected with a relative efficiency eta, it adds kappa * s/(1+s) (kappa =
    eta/beta) to the mode's s; below threshold it is linear in F, so the log-log curve stays
    straight until the jump (height ~1/(beta (1 + kappa))). kappa = 0 gives `light_out`.
    """
    s = photon_number(fluence, threshold, beta, transparency)
    return scale * beta * (s + kappa * s / (1.0 + s))
