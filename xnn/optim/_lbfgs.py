"""L-BFGS over a flat parameter vector, written against the Array API: scipy's L-BFGS-B without
bounds, step for step, with the vectors on their device and only the line search's scalars read
back (one transfer per function evaluation, one per iteration).

scipy's L-BFGS-B (Byrd, Lu, Nocedal, Zhu; v3.0) with no bounds takes, at each iteration, the
direction -H g of the compact L-BFGS matrix with H0 = (s'y / y'y) I of the newest pair: the
two-loop recursion gives the same direction. Its line search is Moré and Thuente's (MINPACK-2's
dcsrch: sufficient decrease 1e-3, curvature 0.9, interval tolerance 0.1), first trying the step
1 / ||d|| on the first iteration and 1 after. Its stopping rules, counters, restarts after a
failed line search and messages are scipy's (``scipy.optimize.minimize(method="L-BFGS-B")``),
so a caller can treat the result as scipy's.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from .._checks import read_numbers
from ..namespace import array_namespace

EPS = 2.220446049250313e-16  # float64's machine epsilon: scipy's L-BFGS-B runs in float64
FTOL = 1e7 * EPS  # scipy's default ftol (factr 1e7): relative reduction of f that stops
STEP_MAX = 1e10  # scipy's largest step without bounds

CONVERGED_GRADIENT = "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"
CONVERGED_F = "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"
MAX_ITER = "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
MAX_FUN = "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"
ABNORMAL = "ABNORMAL: "


@dataclass
class LBFGSResult:
    """What scipy's ``OptimizeResult`` says of an L-BFGS-B run: ``x`` (on its device), ``fun``,
    the iterations ``nit`` and evaluations ``nfev``, ``status`` (0 converged, 1 a limit reached,
    2 the line search failed) and scipy's ``message``."""

    x: Any
    fun: float
    nit: int
    nfev: int
    status: int
    message: str


def lbfgs(fun: Callable[[Any], tuple[Any, Any]], x0: Any, *, max_iter: int, max_fun: int,
          gtol: float, ftol: float = FTOL, memory: int = 10,
          max_line_search: int = 20) -> LBFGSResult:
    """Minimize ``fun`` (x -> (f, gradient), f a 0-d array) from ``x0``, a 1-D array, as scipy's
    L-BFGS-B does without bounds (``maxiter``, ``maxfun``, ``gtol``, ``ftol``, ``maxcor``,
    ``maxls`` are ``max_iter``, ``max_fun``, ``gtol``, ``ftol``, ``memory``, ``max_line_search``).
    """
    xp = array_namespace(x0)
    x = x0
    f, g = fun(x)
    nfev, nit = 1, 0
    f, g_max = (float(v) for v in read_numbers(xp, [f, xp.max(xp.abs(g))]))

    def done(status: int, message: str) -> LBFGSResult:
        if status == 2 and (nfev > max_fun or nit >= max_iter):
            status = 1  # scipy's driver reports a limit reached over a failed line search
        return LBFGSResult(x, f, nit, nfev, status, message)

    if g_max <= gtol:
        return done(0, CONVERGED_GRADIENT)
    pairs: deque = deque(maxlen=memory)  # (s, y, s'y), the oldest first
    scale: Any = 1.0  # H0 = scale I: s'y / y'y of the newest pair
    while True:
        d = -g if not pairs else _direction(xp, g, pairs, scale)
        gd, d_norm = (float(v) for v in read_numbers(xp, [xp.sum(g * d),
                                                          xp.sqrt(xp.sum(d * d))]))
        accepted = None
        if gd < 0:  # a descent direction (else the line search is impossible: restart)
            search = _LineSearch(f, gd, min(1 / d_norm, STEP_MAX) if nit == 0 else 1.0)
            for _ in range(max_line_search):
                x_new = x + search.step * d
                f_new, g_new = fun(x_new)
                nfev += 1
                f_new, gd_new, g_max_new = (float(v) for v in read_numbers(
                    xp, [f_new, xp.sum(g_new * d), xp.max(xp.abs(g_new))]))
                step = search.step
                if search.done(f_new, gd_new):
                    accepted = x_new, f_new, g_new, gd_new, g_max_new, step
                    break
        if accepted is None:  # keep x; forget the pairs and retry along -g, else give up
            if not pairs:
                return done(2, ABNORMAL)
            pairs.clear()
            scale = 1.0
            continue
        f_old, g_old = f, g
        x, f, g, gd_new, g_max, step = accepted
        nit += 1
        if nit >= max_iter:
            return done(1, MAX_ITER)
        if nfev > max_fun:
            return done(1, MAX_FUN)
        if g_max <= gtol:
            return done(0, CONVERGED_GRADIENT)
        if f_old - f <= ftol * max(abs(f_old), abs(f), 1.0):
            return done(0, CONVERGED_F)
        y = g - g_old
        sy = (gd_new - gd) * step  # s'y with s = step d, from the slopes the search read
        if sy > EPS * (-gd * step):  # else the pair would not keep H positive definite: skip it
            pairs.append((step * d, y, sy))
            scale = sy / xp.sum(y * y)


def _direction(xp: Any, g: Any, pairs: deque, scale: Any) -> Any:
    """-H g by the two-loop recursion over the pairs (s, y, s'y), H0 = scale I."""
    q, alphas = g, []
    for s, y, sy in reversed(pairs):
        a = xp.sum(s * q) / sy
        q = q - a * y
        alphas.append(a)
    r = scale * q
    for (s, y, sy), a in zip(pairs, reversed(alphas)):
        r = r + (a - xp.sum(y * r) / sy) * s
    return -r


class _LineSearch:
    """Moré and Thuente's line search (MINPACK-2's dcsrch) for a step satisfying the strong
    Wolfe conditions, phi(t) <= phi(0) + ftol t phi'(0) and |phi'(t)| <= gtol |phi'(0)|, on host
    numbers: ``step`` is the step to try; ``done(phi(step), phi'(step))`` says whether to stop
    there (it converged, or no better step can be found), else sets the next ``step``."""

    ftol, gtol, xtol = 1e-3, 0.9, 0.1  # scipy's L-BFGS-B's
    lo, hi = 0.0, STEP_MAX  # the step's bounds

    def __init__(self, f0: float, g0: float, step: float) -> None:
        self.step, self.f0, self.g0 = step, f0, g0
        self.slope = self.ftol * g0  # the sufficient-decrease line's slope
        self.bracketed, self.first_stage = False, True
        self.width, self.width1 = self.hi - self.lo, 2 * (self.hi - self.lo)
        # (step, phi, phi') at the best step so far (best) and at the interval's other end
        self.best = self.other = (0.0, f0, g0)
        self.interval = (0.0, step + 4.0 * step)  # where the next step may fall

    def done(self, f: float, g: float) -> bool:
        step, slope = self.step, self.slope
        f_test = self.f0 + step * slope
        if self.first_stage and f <= f_test and g >= 0:
            self.first_stage = False
        if (self._stuck(step)
                or step == self.hi and f <= f_test and g <= slope
                or step == self.lo and (f > f_test or g >= slope)
                or f <= f_test and abs(g) <= self.gtol * -self.g0):
            return True  # converged, or scipy's warnings (rounding, interval width, bounds)
        if self.first_stage and f <= self.best[1] and f > f_test:
            # a lower value without sufficient decrease: step on psi(t) = phi(t) - slope t
            shift = [(t, v - t * slope, dv - slope) for t, v, dv in
                     (self.best, self.other, (step, f, g))]
            best, other, step, self.bracketed = _next_step(*shift, self.bracketed,
                                                           *self.interval)
            self.best, self.other = [(t, v + t * slope, dv + slope) for t, v, dv in
                                     (best, other)]
        else:
            self.best, self.other, step, self.bracketed = _next_step(
                self.best, self.other, (step, f, g), self.bracketed, *self.interval)
        x, y = self.best[0], self.other[0]
        if self.bracketed:
            if abs(y - x) >= 0.66 * self.width1:  # the interval shrinks too slowly: bisect
                step = x + 0.5 * (y - x)
            self.width1, self.width = self.width, abs(y - x)
            self.interval = (min(x, y), max(x, y))
        else:
            self.interval = (step + 1.1 * (step - x), step + 4.0 * (step - x))
        step = min(max(step, self.lo), self.hi)
        self.step = x if self._stuck(step) else step  # no progress possible: the best step
        return False

    def _stuck(self, step: float) -> bool:
        """Whether, once bracketed, ``step`` leaves the interval or the interval is too short."""
        lo, hi = self.interval
        return self.bracketed and (step <= lo or step >= hi or hi - lo <= self.xtol * hi)


def _next_step(best: tuple, other: tuple, trial: tuple, bracketed: bool, lo: float,
               hi: float) -> tuple[tuple, tuple, float, bool]:
    """MINPACK-2's dcstep: from (step, phi, phi') at the best step, the interval's other end
    and the trial step, the new best and other ends, the next step (a safeguarded cubic,
    quadratic or secant step, within [lo, hi] while not bracketed) and whether a minimizer is
    now bracketed."""
    sx, fx, dx = best
    sy, fy, dy = other
    sp, fp, dp = trial
    opposite = dx != 0 and dp * math.copysign(1.0, dx) < 0  # the slopes differ in sign
    theta = 3 * (fx - fp) / (sp - sx) + dx + dp  # (dcstep's sums, in its order)
    if fp > fx:
        # a higher value: bracketed; the cubic's minimizer if nearer the best step than the
        # quadratic's (through fx, dx, fp), else their midpoint
        cubic = sx + _cubic_ratio(theta, dx, dp, sp < sx) * (sp - sx)
        quadratic = sx + dx / ((fx - fp) / (sp - sx) + dx) / 2 * (sp - sx)
        near = abs(cubic - sx) < abs(quadratic - sx)
        step = cubic if near else cubic + (quadratic - cubic) / 2
        bracketed = True
    elif opposite:
        # lower, slopes of opposite signs: bracketed; the cubic step if farther from the trial
        # step than the secant step, else the secant step
        cubic = sp + _cubic_ratio(theta, dp, dx, sp > sx) * (sx - sp)
        secant = sp + dp / (dp - dx) * (sx - sp)
        step = cubic if abs(cubic - sp) > abs(secant - sp) else secant
        bracketed = True
    elif abs(dp) < abs(dx):
        # lower, same signs, the slope shrinks: the cubic step if the cubic tends to infinity
        # along the step or its minimizer lies beyond the trial step
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (dx / s) * (dp / s)))
        gamma = -gamma if sp > sx else gamma
        r = ((gamma - dp) + theta) / ((gamma + (dx - dp)) + gamma)
        if r < 0 and gamma != 0:
            cubic = sp + r * (sx - sp)
        else:
            cubic = hi if sp > sx else lo
        secant = sp + dp / (dp - dx) * (sx - sp)
        if bracketed:  # the nearer of the two, and at most 0.66 of the way to the other end
            step = cubic if abs(cubic - sp) < abs(secant - sp) else secant
            far = sp + 0.66 * (sy - sp)
            step = min(far, step) if sp > sx else max(far, step)
        else:  # the farther of the two, within [lo, hi]
            step = cubic if abs(cubic - sp) > abs(secant - sp) else secant
            step = max(lo, min(hi, step))
    elif bracketed:
        # lower, same signs, the slope does not shrink: the cubic step toward the other end
        theta = 3 * (fp - fy) / (sy - sp) + dy + dp
        step = sp + _cubic_ratio(theta, dp, dy, sp > sy) * (sy - sp)
    else:
        step = hi if sp > sx else lo
    if fp > fx:
        other = trial
    else:
        if opposite:
            other = best
        best = trial
    return best, other, step, bracketed


def _cubic_ratio(theta: float, d1: float, d2: float, flip: bool) -> float:
    """Where the minimizer of the cubic with slopes d1 at s1 and d2 at s2 lies, as a fraction of
    the way from s1 to s2 (dcstep's r; theta from the values, ``flip`` negates gamma)."""
    s = max(abs(theta), abs(d1), abs(d2))
    discriminant = (theta / s) ** 2 - (d1 / s) * (d2 / s)
    gamma = s * math.sqrt(discriminant) if discriminant >= 0 else math.nan
    gamma = -gamma if flip else gamma
    return ((gamma - d1) + theta) / (((gamma - d1) + gamma) + d2)
