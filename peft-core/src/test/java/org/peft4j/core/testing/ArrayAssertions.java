package org.peft4j.core.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;

import java.util.Locale;
import java.util.Map;

/**
 * Element-wise comparisons of arrays, each stating what it claims.
 *
 * <ul>
 *   <li><b>Closeness</b> ({@link #assertAllClose}): {@code |actual - expected| <= atol + rtol
 *       |expected|} everywhere, NumPy's {@code allclose}. The caller derives both from float32
 *       rounding: the unit roundoff {@link #U}, the magnitudes involved and how many operations
 *       accumulate (see {@link #gamma}), never from what one CPU happened to give. BLAS libraries
 *       sum in orders that depend on the instruction set, the thread count and the buffers'
 *       alignment (MKL takes other paths on AVX2 and AVX-512), so two correct results differ in
 *       their last bits. {@link #assertRoundingClose} is the form for two evaluations of the
 *       same math: {@code c} unit roundoffs of the largest magnitude, relative and absolute.
 *   <li><b>A bound per element</b> ({@link #assertWithin}): for a product against a
 *       double-precision reference, Higham's {@code |fl(x . y) - x . y| <= gamma_n sum |x_i y_i|},
 *       which holds for any summation order, FMA or not.
 *   <li><b>Bitwise equality</b> ({@link #assertSameBits}): only where the code guarantees it on
 *       every machine (a copy, a save and load, an array left untouched); the caller says why.
 * </ul>
 *
 * <p>Every failure message gives the worst element and the largest differences anywhere, so that
 * a failure on another machine reports what it measured.
 */
public final class ArrayAssertions {

    /** The unit roundoff of float32, {@code u = 2^-24}: half the distance from 1 to the next. */
    public static final double U = 0x1p-24;

    private ArrayAssertions() {}

    /**
     * Returns Higham's {@code gamma_n = n u / (1 - n u)}: a sum or dot product of {@code n} float32
     * terms, in any order, is within {@code gamma_n sum |terms|} of the exact value.
     *
     * @param n the number of terms (or of rounded operations in a chain)
     * @return {@code gamma_n} for float32
     * @throws IllegalArgumentException if {@code n u >= 1}, where the bound says nothing
     */
    public static double gamma(long n) {
        double nu = n * U;
        if (nu >= 1) {
            throw new IllegalArgumentException("gamma_" + n + " is unbounded in float32");
        }
        return nu / (1 - nu);
    }

    /**
     * Asserts that two arrays have the same shape and that {@code |actual - expected| <= atol +
     * rtol |expected|} everywhere.
     *
     * @param expected the reference
     * @param actual the array under test
     * @param rtol the relative tolerance
     * @param atol the absolute tolerance
     * @param what what is compared, for the message
     */
    public static void assertAllClose(
            NDArray expected, NDArray actual, double rtol, double atol, String what) {
        assertEquals(expected.getShape(), actual.getShape(), what + ": shape");
        assertAllClose(floats(expected), floats(actual), rtol, atol, what);
    }

    /**
     * Asserts that two float arrays have the same length and that {@code |actual - expected| <=
     * atol + rtol |expected|} everywhere.
     *
     * @param expected the reference
     * @param actual the values under test
     * @param rtol the relative tolerance
     * @param atol the absolute tolerance
     * @param what what is compared, for the message
     */
    public static void assertAllClose(
            float[] expected, float[] actual, double rtol, double atol, String what) {
        assertAllClose(toDouble(expected), actual, rtol, atol, what);
    }

    /**
     * Asserts that float32 results are close to a double-precision reference: {@code |actual -
     * expected| <= atol + rtol |expected|} everywhere.
     *
     * @param expected the reference
     * @param actual the values under test
     * @param rtol the relative tolerance
     * @param atol the absolute tolerance
     * @param what what is compared, for the message
     */
    public static void assertAllClose(
            double[] expected, float[] actual, double rtol, double atol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        double[] bound = new double[expected.length];
        for (int i = 0; i < bound.length; i++) {
            bound[i] = atol + rtol * Math.abs(expected[i]);
        }
        check(expected, actual, bound, what, atol + " + " + rtol + " |expected|");
    }

    /**
     * Asserts that two float32 evaluations of the same math agree to rounding: {@code |actual -
     * expected| <= c u (|expected| + max |expected|)} everywhere, that is {@link #assertAllClose}
     * with {@code rtol = c u} and {@code atol = c u max|expected|}. The absolute part scales with
     * the array's largest magnitude because rounding errors of sums scale with the terms summed,
     * not with the (possibly cancelled) result. The caller justifies {@code c} from the depth of
     * the computation and how many terms each element accumulates.
     *
     * @param expected the reference
     * @param actual the values under test
     * @param c the number of unit roundoffs allowed
     * @param what what is compared, for the message
     */
    public static void assertRoundingClose(
            float[] expected, float[] actual, double c, String what) {
        assertAllClose(expected, actual, c * U, c * U * maxAbs(expected), what);
    }

    /**
     * Asserts that two arrays have the same shape and agree to rounding, as {@link
     * #assertRoundingClose(float[], float[], double, String)}.
     *
     * @param expected the reference
     * @param actual the array under test
     * @param c the number of unit roundoffs allowed
     * @param what what is compared, for the message
     */
    public static void assertRoundingClose(
            NDArray expected, NDArray actual, double c, String what) {
        assertEquals(expected.getShape(), actual.getShape(), what + ": shape");
        assertRoundingClose(floats(expected), floats(actual), c, what);
    }

    /**
     * Asserts that {@code |actual[i] - expected[i]| <= bound[i]} everywhere: for results with a
     * rounding bound of their own, such as {@code gamma_n sum |x_i y_i|} for products.
     *
     * @param expected the reference
     * @param actual the values under test
     * @param bound the largest allowed difference of each element
     * @param what what is compared, for the message
     */
    public static void assertWithin(double[] expected, float[] actual, double[] bound, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        assertEquals(expected.length, bound.length, what + ": bounds");
        check(expected, actual, bound, what, "its bound");
    }

    /**
     * Asserts that two arrays hold the same bits, element for element ({@code -0.0} and {@code
     * 0.0} differ, NaNs of the same pattern agree).
     *
     * @param expected the reference
     * @param actual the values under test
     * @param guarantee why the code guarantees bitwise equality on every machine
     */
    public static void assertSameBits(float[] expected, float[] actual, String guarantee) {
        assertEquals(expected.length, actual.length, guarantee + ": length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                fail(
                        String.format(
                                Locale.ROOT,
                                "%s, but element %d differs: expected %s, got %s (largest"
                                        + " difference anywhere %.3e)",
                                guarantee,
                                i,
                                expected[i],
                                actual[i],
                                maxAbsDiff(expected, actual)));
            }
        }
    }

    /**
     * Asserts that two arrays have the same shape and hold the same bits.
     *
     * @param expected the reference
     * @param actual the array under test
     * @param guarantee why the code guarantees bitwise equality on every machine
     */
    public static void assertSameBits(NDArray expected, NDArray actual, String guarantee) {
        assertEquals(expected.getShape(), actual.getShape(), guarantee + ": shape");
        assertSameBits(floats(expected), floats(actual), guarantee);
    }

    /**
     * Asserts that two sets of parameters have the same names and, name for name, the same shapes
     * and bits (an adapter saved and loaded again, say).
     *
     * @param expected the reference, by name
     * @param actual the parameters under test, by name
     * @param guarantee why the code guarantees bitwise equality on every machine
     */
    public static void assertSameParameters(
            Map<String, Parameter> expected, Map<String, Parameter> actual, String guarantee) {
        assertEquals(expected.keySet(), actual.keySet(), guarantee + ": the parameters");
        expected.forEach(
                (name, p) ->
                        assertSameBits(
                                p.getArray(), actual.get(name).getArray(), guarantee + ": " + name));
    }

    /**
     * Returns the largest absolute element-wise difference of two arrays of equal length.
     *
     * @param a the first array
     * @param b the second array
     * @return {@code max |a[i] - b[i]|}
     */
    public static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length, "length");
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs((double) a[i] - b[i]));
        }
        return worst;
    }

    /**
     * Returns the largest absolute element-wise difference of two arrays of the same shape.
     *
     * @param a the first array
     * @param b the second array
     * @return {@code max |a - b|}
     */
    public static double maxAbsDiff(NDArray a, NDArray b) {
        assertEquals(a.getShape(), b.getShape(), "shape");
        return maxAbsDiff(floats(a), floats(b));
    }

    /**
     * Returns the largest magnitude in an array, the scale for an absolute tolerance.
     *
     * @param values the array
     * @return {@code max |values[i]|}, 0 for an empty array
     */
    public static double maxAbs(float[] values) {
        double worst = 0;
        for (float value : values) {
            worst = Math.max(worst, Math.abs(value));
        }
        return worst;
    }

    /**
     * Returns the largest magnitude in an array, the scale for an absolute tolerance.
     *
     * @param values the array
     * @return {@code max |values[i]|}, 0 for an empty array
     */
    public static double maxAbs(double[] values) {
        double worst = 0;
        for (double value : values) {
            worst = Math.max(worst, Math.abs(value));
        }
        return worst;
    }

    /**
     * Returns the largest magnitude in an array, the scale for an absolute tolerance.
     *
     * @param values the array
     * @return {@code max |values|}
     */
    public static double maxAbs(NDArray values) {
        return maxAbs(floats(values));
    }

    /**
     * Returns an array's values as float32, whatever its type.
     *
     * @param array the array
     * @return its values in row-major order
     */
    public static float[] floats(NDArray array) {
        return array.toType(DataType.FLOAT32, false).toFloatArray();
    }

    private static double[] toDouble(float[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = values[i];
        }
        return out;
    }

    /**
     * Where comparisons record how much of their bound they used, if anywhere: the environment
     * variable {@code PEFT4J_TOLERANCE_LOG} names a file to which every comparison, passed or
     * failed, appends a line {@code what <TAB> largest |difference| / bound <TAB> largest
     * |difference|}. For measuring tolerances on a new machine; unset, nothing is written.
     */
    private static final String TOLERANCE_LOG = System.getenv("PEFT4J_TOLERANCE_LOG");

    static synchronized void record(String what, double used, double maxDiff) {
        if (TOLERANCE_LOG == null || TOLERANCE_LOG.isEmpty()) {
            return;
        }
        String line = String.format(Locale.ROOT, "%s\t%.4f\t%.3e%n", what, used, maxDiff);
        try {
            java.nio.file.Files.writeString(
                    java.nio.file.Path.of(TOLERANCE_LOG),
                    line,
                    java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void check(
            double[] expected, float[] actual, double[] bound, String what, String rule) {
        int worst = -1;
        double worstRatio = 0;
        double maxDiff = 0;
        double maxRel = 0;
        double used = 0;
        for (int i = 0; i < expected.length; i++) {
            double diff = Math.abs(expected[i] - actual[i]);
            maxDiff = Math.max(maxDiff, diff);
            if (expected[i] != 0) {
                maxRel = Math.max(maxRel, diff / Math.abs(expected[i]));
            }
            double ratio = bound[i] > 0 ? diff / bound[i] : (diff == 0 ? 0 : Double.POSITIVE_INFINITY);
            used = Math.max(used, ratio);
            if (!(diff <= bound[i]) && (worst < 0 || ratio > worstRatio || Double.isNaN(diff))) {
                worst = i;
                worstRatio = ratio;
            }
        }
        record(what, used, maxDiff);
        if (worst >= 0) {
            fail(
                    String.format(
                            Locale.ROOT,
                            "%s: element %d differs by %.3e > %s = %.3e (%.1f x the bound):"
                                    + " expected %s, got %s; largest difference anywhere %.3e,"
                                    + " largest relative %.3e",
                            what,
                            worst,
                            Math.abs(expected[worst] - actual[worst]),
                            rule,
                            bound[worst],
                            worstRatio,
                            expected[worst],
                            actual[worst],
                            maxDiff,
                            maxRel));
        }
    }
}
