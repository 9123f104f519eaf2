package org.peft4j.lora;

import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.gamma;

import java.util.Map;

/**
 * Plain-Java reference math in double precision, independent of the engine, with a bound on how
 * far any float32 evaluation may be from it.
 *
 * <p>The bound of a layer {@code y = h W^T + b + s (h A^T) B^T} follows Higham: a term's path
 * through the float32 computation has at most {@code n} roundings, so it is off by at most {@code
 * gamma_n} of its magnitude, whatever the summation order. The branch's terms {@code h_k A_jk
 * B_oj s} pass the most: {@code h A^T} (in), the scale, itself rounded to float, and its product
 * (2), {@code B^T} plus the bias (r + 1), then the base product that takes that as its addend (in
 * + 1); so {@code gamma(2 in + r + 4)} of {@code sum_k |h_k| (|W_ok| + |s| sum_j |B_oj| |A_jk|)
 * + |b_o|} bounds the unmerged pass. The other forms take fewer: the effective weight {@code W + s
 * B A} of a many-row inference pass and a merged {@code W} ({@code r + 2} for the weight, {@code in
 * + 1} for the product). Errors of a layer's input pass through {@code |W| + |s| |B| |A|}, and
 * ReLU does not enlarge them, so the bound of a stack is carried layer by layer.
 */
final class Reference {

    /** float16's unit roundoff, {@code 2^-11}. */
    static final double U16 = 0x1p-11;

    private Reference() {}

    /** Values in double precision with the largest distance of a float32 evaluation from them. */
    static final class Expected {
        final double[] value;
        final double[] bound;

        Expected(double[] value, double[] bound) {
            this.value = value;
            this.bound = bound;
        }

        /** The bound times a factor, e.g. 2 for two evaluations compared with each other. */
        double[] bound(double factor) {
            double[] out = bound.clone();
            for (int i = 0; i < out.length; i++) {
                out[i] *= factor;
            }
            return out;
        }
    }

    /** Widens float values to double, exactly. */
    static double[] toDouble(float[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = values[i];
        }
        return out;
    }

    /**
     * {@code y = x W^T + b + s (x A^T) B^T} for float32 adapters, and its bound.
     *
     * @param b the bias, or null
     */
    static Expected lora(
            float[] x,
            int n,
            int in,
            float[] w,
            float[] b,
            int out,
            float[] a,
            float[] bb,
            int r,
            double s) {
        return layer(toDouble(x), new double[x.length], n, in, w, b, out, a, bb, r, s, U);
    }

    /**
     * One layer on an input {@code h} known to within {@code e} (element-wise), with an adapter
     * of the given type. A float16 adapter's branch rounds to float16 where a float32 one rounds to
     * float32: the input cast, the result of {@code h A^T}, the scale and its product, and the
     * result of {@code B^T}; those 5 roundings of {@code 2^-11} bound the branch, on top of the
     * float32 bound. The bias stays in float32: it is added after the branch is cast back.
     * (PyTorch's CPU kernels accumulate float16 products in float32, whose rounding the float32
     * bound covers; a kernel summing in float16 would need {@code in + r + 4} instead.)
     *
     * @param b the bias, or null
     * @param a {@code A [r, in]}, or null for a plain layer
     * @param adapterU the unit roundoff of the adapter's type
     */
    static Expected layer(
            double[] h,
            double[] e,
            int n,
            int in,
            float[] w,
            float[] b,
            int out,
            float[] a,
            float[] bb,
            int r,
            double s,
            double adapterU) {
        double g = gamma(2L * in + r + 4);
        double gAdapter = 0;
        if (adapterU != U) {
            int steps = 5;
            gAdapter = steps * adapterU / (1 - steps * adapterU);
        }
        double[] y = new double[n * out];
        double[] bound = new double[n * out];
        for (int i = 0; i < n; i++) {
            double[] xa = new double[r];
            double[] xaMagnitude = new double[r];
            double[] xaError = new double[r];
            for (int j = 0; a != null && j < r; j++) {
                for (int k = 0; k < in; k++) {
                    double hk = h[i * in + k];
                    xa[j] += a[j * in + k] * hk;
                    xaMagnitude[j] += Math.abs(a[j * in + k]) * (Math.abs(hk) + e[i * in + k]);
                    xaError[j] += Math.abs(a[j * in + k]) * e[i * in + k];
                }
            }
            for (int o = 0; o < out; o++) {
                double base = 0;
                double baseMagnitude = 0;
                double baseError = 0;
                for (int k = 0; k < in; k++) {
                    double hk = h[i * in + k];
                    base += hk * w[o * in + k];
                    baseMagnitude += (Math.abs(hk) + e[i * in + k]) * Math.abs(w[o * in + k]);
                    baseError += e[i * in + k] * Math.abs(w[o * in + k]);
                }
                double branch = 0;
                double branchMagnitude = 0;
                double branchError = 0;
                for (int j = 0; a != null && j < r; j++) {
                    branch += s * bb[o * r + j] * xa[j];
                    branchMagnitude += Math.abs(s * bb[o * r + j]) * xaMagnitude[j];
                    branchError += Math.abs(s * bb[o * r + j]) * xaError[j];
                }
                double bias = b == null ? 0 : b[o];
                y[i * out + o] = base + bias + branch;
                bound[i * out + o] =
                        baseError
                                + branchError
                                + g * (baseMagnitude + Math.abs(bias) + branchMagnitude)
                                + gAdapter * branchMagnitude;
            }
        }
        return new Expected(y, bound);
    }

    /**
     * {@link TestModels#mlp}'s network, {@code 0 -> relu -> 2 -> relu -> 4}, on the parameters of
     * a snapshot (see {@link TestModels#snapshot}), with the adapters that the snapshot holds
     * ({@code <path>.lora_A}, {@code <path>.lora_B}) when {@code withAdapter}.
     *
     * @param params the parameter values by path, taken before any merge
     * @param s the adapters' scaling
     * @param adapterU the unit roundoff of the adapters' type
     */
    static Expected mlp(
            Map<String, float[]> params,
            double s,
            float[] x,
            int rows,
            boolean withAdapter,
            double adapterU) {
        int[] widths = {TestModels.IN, TestModels.HIDDEN, TestModels.HIDDEN, TestModels.OUT};
        double[] h = toDouble(x);
        double[] e = new double[h.length];
        Expected y = null;
        for (int layer = 0; layer < 3; layer++) {
            String path = Integer.toString(2 * layer);
            float[] a = withAdapter ? params.get(path + ".lora_A") : null;
            float[] bb = withAdapter ? params.get(path + ".lora_B") : null;
            int r = a == null ? 0 : a.length / widths[layer];
            y =
                    layer(
                            h,
                            e,
                            rows,
                            widths[layer],
                            params.get(path + ".weight"),
                            params.get(path + ".bias"),
                            widths[layer + 1],
                            a,
                            bb,
                            r,
                            s,
                            adapterU);
            if (layer < 2) {
                h = y.value.clone();
                for (int i = 0; i < h.length; i++) {
                    h[i] = Math.max(0, h[i]); // ReLU, which does not enlarge an error
                }
                e = y.bound;
            }
        }
        return y;
    }
}
