package org.peft4j.lora;

/** Plain-Java reference math in double precision, independent of the engine. */
final class Reference {

    private Reference() {}

    /** {@code x [n, in] times w^T, w [out, in]} as row-major arrays. */
    static double[] matmulT(float[] x, int n, int in, float[] w, int out) {
        double[] y = new double[n * out];
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int k = 0; k < in; k++) {
                    s += (double) x[i * in + k] * w[o * in + k];
                }
                y[i * out + o] = s;
            }
        }
        return y;
    }

    static float[] toFloat(double[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (float) values[i];
        }
        return out;
    }

    /** {@code y = x W^T + b + s (x A^T) B^T}. */
    static float[] lora(
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
        double[] base = matmulT(x, n, in, w, out);
        float[] xa = toFloat(matmulT(x, n, in, a, r));
        double[] delta = matmulT(xa, n, r, bb, out);
        double[] y = new double[n * out];
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < out; o++) {
                y[i * out + o] =
                        base[i * out + o] + (b == null ? 0 : b[o]) + s * delta[i * out + o];
            }
        }
        return toFloat(y);
    }
}
