package org.peft4j.lora;

import org.peft4j.lora.WeightedAdapters.Factors;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The double-precision math of {@link WeightedAdapters}' combinations over one layer's {@link
 * Factors}: the {@code linear} and {@code cat} factors, and the best rank-{@code R} factors of a
 * weighted delta (orthonormalised cat factors and a one-sided Jacobi SVD of their small core; see
 * {@link WeightedAdapters}).
 */
final class FactorMath {

    private FactorMath() {}

    /** {@code A = sum sqrt(w s) A_i}, {@code B = sum sqrt(w s) B_i}. */
    static Factors linear(List<Factors> parts, List<Double> weightTimesScaling) {
        Factors first = parts.get(0);
        double[] a = new double[first.a.length];
        double[] b = new double[first.b.length];
        for (int i = 0; i < parts.size(); i++) {
            double root = Math.sqrt(weightTimesScaling.get(i));
            addScaled(a, parts.get(i).a, root);
            addScaled(b, parts.get(i).b, root);
        }
        return new Factors(first.r, first.in, first.out, a, b);
    }

    private static void addScaled(double[] target, double[] source, double factor) {
        for (int j = 0; j < target.length; j++) {
            target[j] += factor * source[j];
        }
    }

    /**
     * The stacked {@code [w_i s_i A_i]: [rank, in]} and side by side {@code [B_i]: [out, rank]},
     * zeros beyond the parts' ranks.
     */
    static Factors cat(List<Factors> parts, List<Double> weightTimesScaling, int rank) {
        int in = parts.get(0).in;
        int out = parts.get(0).out;
        double[] a = new double[rank * in];
        double[] b = new double[out * rank];
        int offset = 0;
        for (int i = 0; i < parts.size(); i++) {
            Factors f = parts.get(i);
            double factor = weightTimesScaling.get(i);
            for (int k = 0; k < f.r; k++) {
                for (int j = 0; j < in; j++) {
                    a[(offset + k) * in + j] = factor * f.a[k * in + j];
                }
                for (int o = 0; o < out; o++) {
                    b[o * rank + offset + k] = f.b[o * f.r + k];
                }
            }
            offset += f.r;
        }
        return new Factors(rank, in, out, a, b);
    }

    /** The best rank-{@code rank} factors of {@code sum w_i s_i B_i A_i}; see the class doc. */
    static Factors svd(List<Factors> parts, List<Double> weightTimesScaling, int rank) {
        int k = 0;
        for (Factors f : parts) {
            k += f.r;
        }
        // D = P Q with P: [out, k], Q: [k, in], the exact cat factors
        Factors cat = cat(parts, Collections.nCopies(parts.size(), 1.0), k);
        int in = cat.in;
        int out = cat.out;
        double[] p = cat.b.clone(); // [out, k]; scale its columns by w_i s_i instead of Q's rows
        int offset = 0;
        for (int i = 0; i < parts.size(); i++) {
            for (int c = offset; c < offset + parts.get(i).r; c++) {
                for (int o = 0; o < out; o++) {
                    p[o * k + c] *= weightTimesScaling.get(i);
                }
            }
            offset += parts.get(i).r;
        }
        double[] qt = transpose(cat.a, k, in); // [in, k]
        double[] rp = orthonormalize(p, out, k); // p becomes Q_P, rp = R_P: [k, k]
        double[] rq = orthonormalize(qt, in, k); // qt becomes Q_Q, rq = R_Q: [k, k]
        // core C = R_P R_Q^T, [k, k]
        double[] core = new double[k * k];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                double sum = 0;
                for (int l = 0; l < k; l++) {
                    sum += rp[i * k + l] * rq[j * k + l];
                }
                core[i * k + j] = sum;
            }
        }
        double[] v = jacobi(core, k); // core becomes C V = U S, v = V
        Integer[] order = new Integer[k];
        double[] norms = new double[k];
        for (int c = 0; c < k; c++) {
            order[c] = c;
            for (int l = 0; l < k; l++) {
                norms[c] += core[l * k + c] * core[l * k + c];
            }
        }
        Arrays.sort(order, (x, y) -> Double.compare(norms[y], norms[x]));
        int kept = Math.min(rank, k);
        double[] a = new double[rank * in];
        double[] b = new double[out * rank];
        for (int n = 0; n < kept; n++) {
            int c = order[n];
            // B column n = Q_P (U S)[:, c]; A row n = (Q_Q V[:, c])^T
            for (int o = 0; o < out; o++) {
                double sum = 0;
                for (int l = 0; l < k; l++) {
                    sum += p[o * k + l] * core[l * k + c];
                }
                b[o * rank + n] = sum;
            }
            for (int j = 0; j < in; j++) {
                double sum = 0;
                for (int l = 0; l < k; l++) {
                    sum += qt[j * k + l] * v[l * k + c];
                }
                a[n * in + j] = sum;
            }
        }
        return new Factors(rank, in, out, a, b);
    }

    private static double[] transpose(double[] m, int rows, int cols) {
        double[] t = new double[m.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                t[j * rows + i] = m[i * cols + j];
            }
        }
        return t;
    }

    /**
     * Gram-Schmidt, each projection done twice (CGS2), on the columns of {@code m: [rows, cols]}
     * in place: {@code m} becomes {@code Q} with orthonormal or zero columns, and the returned
     * {@code R: [cols, cols]} is upper triangular with {@code m = Q R}. A column that is, to
     * rounding, in the span of the earlier ones becomes zero, its row of {@code R} keeping only the
     * projections: {@code Q R} is still {@code m}.
     */
    static double[] orthonormalize(double[] m, int rows, int cols) {
        double[] r = new double[cols * cols];
        for (int c = 0; c < cols; c++) {
            double before = columnNorm(m, rows, cols, c);
            for (int pass = 0; pass < 2; pass++) {
                for (int e = 0; e < c; e++) {
                    double dot = 0;
                    for (int i = 0; i < rows; i++) {
                        dot += m[i * cols + e] * m[i * cols + c];
                    }
                    r[e * cols + c] += dot;
                    for (int i = 0; i < rows; i++) {
                        m[i * cols + c] -= dot * m[i * cols + e];
                    }
                }
            }
            double norm = columnNorm(m, rows, cols, c);
            // what is left of a dependent column is rounding noise: drop it
            if (norm <= 1e-13 * before || norm == 0) {
                for (int i = 0; i < rows; i++) {
                    m[i * cols + c] = 0;
                }
                continue;
            }
            r[c * cols + c] = norm;
            for (int i = 0; i < rows; i++) {
                m[i * cols + c] /= norm;
            }
        }
        return r;
    }

    private static double columnNorm(double[] m, int rows, int cols, int c) {
        double sum = 0;
        for (int i = 0; i < rows; i++) {
            sum += m[i * cols + c] * m[i * cols + c];
        }
        return Math.sqrt(sum);
    }

    /**
     * One-sided Jacobi (Hestenes) on the square {@code w: [n, n]} in place: plane rotations of
     * column pairs until every pair is orthogonal to rounding. Then {@code w} is {@code U S} (its
     * column norms the singular values) and the returned {@code V: [n, n]} is orthogonal with
     * {@code w_in = (U S) V^T}.
     */
    static double[] jacobi(double[] w, int n) {
        double[] v = new double[n * n];
        for (int i = 0; i < n; i++) {
            v[i * n + i] = 1;
        }
        for (int sweep = 0; sweep < 100; sweep++) {
            boolean rotated = false;
            for (int p = 0; p < n - 1; p++) {
                for (int q = p + 1; q < n; q++) {
                    double alpha = 0;
                    double beta = 0;
                    double gamma = 0;
                    for (int i = 0; i < n; i++) {
                        alpha += w[i * n + p] * w[i * n + p];
                        beta += w[i * n + q] * w[i * n + q];
                        gamma += w[i * n + p] * w[i * n + q];
                    }
                    if (gamma == 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) {
                        continue;
                    }
                    rotated = true;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.signum(zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                    if (zeta == 0) {
                        t = 1;
                    }
                    double cos = 1 / Math.sqrt(1 + t * t);
                    double sin = cos * t;
                    rotate(w, n, p, q, cos, sin);
                    rotate(v, n, p, q, cos, sin);
                }
            }
            if (!rotated) {
                return v;
            }
        }
        return v; // 100 sweeps leave any real matrix orthogonal far below float32 rounding
    }

    private static void rotate(double[] m, int n, int p, int q, double cos, double sin) {
        for (int i = 0; i < n; i++) {
            double x = m[i * n + p];
            double y = m[i * n + q];
            m[i * n + p] = cos * x - sin * y;
            m[i * n + q] = sin * x + cos * y;
        }
    }
}
