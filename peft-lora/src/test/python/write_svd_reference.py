#!/usr/bin/python3
"""Writes an SVD reference for WeightedAdaptersTest with numpy's LAPACK SVD.

Three adapters of one layer [out 12, in 10]: r 3, 2 and 4, alpha 6, 2 and 2 (the third with
rsLoRA, s = alpha / sqrt(r)), weights 0.6, -0.9 and 0.4. The weighted delta
D = sum_i w_i s_i B_i A_i is decomposed by numpy.linalg.svd (LAPACK gesdd) and cut to rank 4
as Hugging Face PEFT's svd combination cuts it (U[:, :4] diag(S[:4]) Vh[:4]).

Run with Debian's /usr/bin/python3 (numpy 1.x) from this directory; it rewrites
../resources/weighted/svd_reference.json with the inputs (float32 values, as an adapter file
holds them, written as the doubles they are) and the expected truncated delta and singular
values.
"""

import json
import math

import numpy as np

OUT, IN, RANK = 12, 10, 4
ADAPTERS = [  # r, alpha, rslora, weight
    (3, 6.0, False, 0.6),
    (2, 2.0, False, -0.9),
    (4, 2.0, True, 0.4),
]


def main():
    rng = np.random.default_rng(16)
    adapters = []
    delta = np.zeros((OUT, IN))
    for r, alpha, rslora, weight in ADAPTERS:
        a = rng.standard_normal((r, IN)).astype(np.float32)
        b = rng.standard_normal((OUT, r)).astype(np.float32)
        s = alpha / math.sqrt(r) if rslora else alpha / r
        delta += weight * s * (b.astype(np.float64) @ a.astype(np.float64))
        adapters.append(
            {
                "r": r,
                "alpha": alpha,
                "rslora": rslora,
                "weight": weight,
                "A": [float(v) for v in a.ravel()],
                "B": [float(v) for v in b.ravel()],
            }
        )
    u, sv, vh = np.linalg.svd(delta, full_matrices=True)
    truncated = u[:, :RANK] @ np.diag(sv[:RANK]) @ vh[:RANK, :]
    reference = {
        "out": OUT,
        "in": IN,
        "rank": RANK,
        "adapters": adapters,
        "singular_values": [float(v) for v in sv],
        "truncated_delta": [float(v) for v in truncated.ravel()],
    }
    with open("../resources/weighted/svd_reference.json", "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
