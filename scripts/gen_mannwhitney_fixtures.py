#!/usr/bin/env python3
"""Writes collector/tests/fixtures/mannwhitney.json, SciPy's and NumPy's answers for the inputs
that the unit tests of collector/src/verify/stats.rs feed to the Rust implementation.

Every input comes from a fixed seed, so running this again with the same SciPy and NumPy gives
the same file. Set up once with:

    python3 -m venv /tmp/scipy-venv && /tmp/scipy-venv/bin/pip install scipy numpy
    /tmp/scipy-venv/bin/python scripts/gen_mannwhitney_fixtures.py

Sample values are rounded to a few decimals (or are small integers) so that the file stays small
and every number parses to the same f64 in Python and in Rust.
"""

import json
import math
import pathlib

import numpy as np
import scipy
from scipy import special, stats

OUT = pathlib.Path(__file__).resolve().parent.parent / "collector/tests/fixtures/mannwhitney.json"
ALTERNATIVES = ("two-sided", "greater", "less")


def mwu_z(x, y, alternative):
    """SciPy's standardized statistic (scipy/stats/_mannwhitneyu.py, _get_mwu_z), from public
    pieces: the p-value is norm.sf(z), doubled for two-sided. None when it is not finite."""
    n1, n2 = len(x), len(y)
    n = n1 + n2
    _, counts = np.unique(np.concatenate([x, y]), return_counts=True)
    tie_term = float(np.sum(counts.astype(float) ** 3 - counts))
    u1 = stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic").statistic
    u2 = n1 * n2 - u1
    u = {"greater": u1, "less": u2, "two-sided": max(u1, u2)}[alternative]
    s = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    if s == 0:
        return None
    return (u - n1 * n2 / 2 - 0.5) / s


def mw_case(name, x, y):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    results = []
    for alternative in ALTERNATIVES:
        r = stats.mannwhitneyu(
            x, y, alternative=alternative, method="asymptotic", use_continuity=True
        )
        results.append(
            {
                "alternative": alternative,
                "u": float(r.statistic),
                "p_value": float(r.pvalue),
                "z": mwu_z(np.array(x), np.array(y), alternative),
            }
        )
    return {"name": name, "x": x, "y": y, "results": results}


def rounded(a, decimals=3):
    return [float(v) for v in np.round(a, decimals)]


def mann_whitney_cases():
    cases = []
    rng = np.random.default_rng(20240601)

    # Small samples without ties.
    for i, (n1, n2) in enumerate([(3, 4), (5, 5), (6, 9), (8, 3)]):
        cases.append(
            mw_case(f"small_{n1}x{n2}_{i}", rounded(rng.normal(0, 1, n1)), rounded(rng.normal(0.5, 1, n2)))
        )
    cases.append(mw_case("tiny_1x1", [1.0], [2.0]))
    cases.append(mw_case("tiny_1x1_reversed", [2.0], [1.0]))
    cases.append(mw_case("tiny_1x1_tied", [3.0], [3.0]))

    # One sample of size 1.
    cases.append(mw_case("single_x_high", [10.0], rounded(rng.normal(0, 1, 20))))
    cases.append(mw_case("single_x_middle", [0.0], rounded(rng.normal(0, 1, 15))))
    cases.append(mw_case("single_y_low", rounded(rng.normal(0, 1, 25)), [-10.0]))
    cases.append(mw_case("single_y_tied", [1.0, 2.0, 2.0, 3.0, 2.0], [2.0]))

    # Heavy ties: small integer ranges.
    for i, (n1, n2, hi) in enumerate([(20, 20, 3), (30, 12, 4), (50, 60, 2), (15, 40, 5)]):
        cases.append(
            mw_case(
                f"ties_{n1}x{n2}_range{hi}_{i}",
                rng.integers(0, hi, n1).tolist(),
                rng.integers(0, hi, n2).tolist(),
            )
        )
    cases.append(mw_case("ties_shifted", rng.integers(2, 6, 40).tolist(), rng.integers(0, 4, 40).tolist()))
    cases.append(mw_case("ties_one_value_each", [1.0] * 10, [2.0] * 7))
    cases.append(mw_case("ties_latency_buckets", rounded(rng.choice([5, 10, 25, 50, 100, 250], 60), 0),
                         rounded(rng.choice([5, 10, 25, 50, 100, 250, 500], 45), 0)))
    cases.append(mw_case("signed_zeros", [-0.0, 0.0, 1.0], [0.0, -0.0, -1.0, 2.0]))

    # All values tied: variance 0.
    cases.append(mw_case("all_tied", [4.0] * 5, [4.0] * 3))
    cases.append(mw_case("all_tied_large", [0.25] * 40, [0.25] * 60))

    # Identical samples.
    same = rounded(rng.normal(100, 15, 30))
    cases.append(mw_case("identical_30", same, list(same)))
    same_ties = rng.integers(0, 5, 25).tolist()
    cases.append(mw_case("identical_with_ties", same_ties, list(same_ties)))

    # Shifted distributions, both directions, several sizes.
    for i, (n1, n2, shift) in enumerate(
        [(20, 20, 0.3), (40, 35, 0.8), (100, 100, 0.2), (150, 120, -0.4), (60, 200, 1.5), (25, 80, -2.0)]
    ):
        cases.append(
            mw_case(
                f"shift_{n1}x{n2}_{shift}_{i}",
                rounded(rng.normal(shift, 1, n1)),
                rounded(rng.normal(0, 1, n2)),
            )
        )
    # Skewed (latency-like) data with a multiplicative regression.
    cases.append(mw_case("lognormal_regression", rounded(rng.lognormal(3.1, 0.5, 120), 2),
                         rounded(rng.lognormal(3.0, 0.5, 150), 2)))
    cases.append(mw_case("lognormal_no_change", rounded(rng.lognormal(3.0, 0.5, 90), 2),
                         rounded(rng.lognormal(3.0, 0.5, 90), 2)))

    # Unequal sizes.
    cases.append(mw_case("unequal_3x200", rounded(rng.normal(1, 1, 3)), rounded(rng.normal(0, 1, 200))))
    cases.append(mw_case("unequal_250x4", rounded(rng.normal(0, 1, 250)), rounded(rng.normal(0.5, 1, 4))))
    cases.append(mw_case("unequal_2x2", [1.0, 5.0], [2.0, 3.0]))

    # Complete separation: far tails of the normal approximation.
    cases.append(mw_case("separated_10x10", list(range(10, 20)), list(range(0, 10))))
    cases.append(mw_case("separated_200x200", list(range(200, 400)), list(range(0, 200))))
    cases.append(mw_case("separated_600x600", list(range(600, 1200)), list(range(0, 600))))
    cases.append(mw_case("separated_ties_300x300", [float(v // 3) for v in range(600, 900)],
                         [float(v // 3) for v in range(0, 300)]))
    # Nearly U = mean: the continuity correction decides the sign of z.
    cases.append(mw_case("balanced_interleaved", [0.0, 3.0, 4.0, 7.0], [1.0, 2.0, 5.0, 6.0]))
    cases.append(mw_case("balanced_odd", [1.0, 4.0, 5.0], [2.0, 3.0, 6.0]))
    return cases


def outlier_case(name, values, k=1.5):
    values = [float(v) for v in values]
    arr = np.array(values)
    finite = arr[np.isfinite(arr)]
    q1, q3 = np.percentile(finite, [25, 75])
    assert math.isclose(stats.iqr(finite), q3 - q1, rel_tol=0, abs_tol=1e-12)
    iqr = q3 - q1
    lo, hi = q1 - k * iqr, q3 + k * iqr
    kept = [v for v in values if math.isfinite(v) and lo <= v <= hi]
    qs = [0.0, 0.1, 0.25, 0.33, 0.5, 0.9, 0.99, 1.0]
    return {
        "name": name,
        "values": values,
        "k": k,
        "q1": float(q1),
        "q3": float(q3),
        "kept": kept,
        "kept_median": float(np.median(kept)) if kept else None,
        "quantiles": [[q, float(np.quantile(np.sort(finite), q))] for q in qs],
    }


def outlier_cases():
    rng = np.random.default_rng(7)
    cases = [
        outlier_case("single", [42.0]),
        outlier_case("two", [1.0, 3.0]),
        outlier_case("with_spikes", [10, 11, 12, 10, 13, 250, 11, 12, -40, 10.5]),
        outlier_case("constant_with_outlier", [5.0] * 8 + [6.0]),
        outlier_case("normal_100", rounded(rng.normal(50, 5, 100))),
        outlier_case("lognormal_latency", rounded(rng.lognormal(3, 0.8, 80), 2)),
        outlier_case("k3_far_out", rounded(np.concatenate([rng.normal(0, 1, 40), [8.0, -9.0, 4.0]])), k=3.0),
        outlier_case("k0_quartiles_only", rounded(rng.normal(0, 1, 21)), k=0.0),
        outlier_case("ties", rng.integers(0, 4, 30).tolist()),
        outlier_case("even_count", [7.0, 1.0, 3.0, 9.0, 5.0, 100.0]),
    ]
    return cases


def normal_sf_cases():
    zs = sorted(
        set(
            [round(v, 3) for v in np.linspace(-8, 8, 33)]
            + [0.1, 0.5, 1.0, 1.6448536269514722, 1.959963984540054, 2.326, 2.999, 3.0, 3.001]
            + [4.5, 6.25, 9.0, 12.5, 17.0, 20.0, 25.0, 30.0, 33.3, 36.0, 37.0, 37.5]
            + [-37.0, -12.0, -3.0, -0.001]
        )
    )
    return [{"z": float(z), "sf": float(special.ndtr(-z))} for z in zs]


def main():
    fixtures = {
        "generator": "scripts/gen_mannwhitney_fixtures.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "mann_whitney": mann_whitney_cases(),
        "outliers": outlier_cases(),
        "normal_sf": normal_sf_cases(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixtures, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}: {len(fixtures['mann_whitney'])} Mann-Whitney cases "
          f"({3 * len(fixtures['mann_whitney'])} results), {len(fixtures['outliers'])} outlier cases, "
          f"{len(fixtures['normal_sf'])} normal_sf points, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
