package org.peft4j.core.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;

/** Element-wise comparisons of arrays with messages that show where they differ. */
public final class ArrayAssertions {

    private ArrayAssertions() {}

    /**
     * Asserts that two arrays have the same shape and differ nowhere by more than {@code tol} in
     * absolute value.
     *
     * @param expected the reference
     * @param actual the array under test
     * @param tol the largest allowed absolute difference
     */
    public static void assertClose(NDArray expected, NDArray actual, double tol) {
        assertEquals(expected.getShape(), actual.getShape(), "shape");
        assertClose(
                expected.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray(),
                actual.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray(),
                tol);
    }

    /**
     * Asserts that two float arrays have the same length and differ nowhere by more than {@code
     * tol}.
     *
     * @param expected the reference
     * @param actual the values under test
     * @param tol the largest allowed absolute difference
     */
    public static void assertClose(float[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length, "length");
        double worst = 0;
        int at = -1;
        for (int i = 0; i < expected.length; i++) {
            double diff = Math.abs((double) expected[i] - actual[i]);
            if (!(diff <= tol) && (at < 0 || diff > worst)) {
                worst = diff;
                at = i;
            }
        }
        if (at >= 0) {
            fail(
                    "arrays differ by "
                            + worst
                            + " > "
                            + tol
                            + " at element "
                            + at
                            + ": expected "
                            + expected[at]
                            + ", got "
                            + actual[at]);
        }
    }

    /**
     * Asserts that two arrays have the same shape and that every element satisfies {@code |actual -
     * expected| <= atol + rtol |expected|}, NumPy's {@code allclose}: for results whose summation
     * order differs (a product split across ranks), where float32 rounding grows with the
     * magnitude.
     *
     * @param expected the reference
     * @param actual the array under test
     * @param rtol the relative tolerance
     * @param atol the absolute tolerance
     */
    public static void assertAllClose(NDArray expected, NDArray actual, double rtol, double atol) {
        assertEquals(expected.getShape(), actual.getShape(), "shape");
        float[] e = expected.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
        float[] a = actual.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
        for (int i = 0; i < e.length; i++) {
            double diff = Math.abs((double) e[i] - a[i]);
            if (!(diff <= atol + rtol * Math.abs(e[i]))) {
                fail(
                        "arrays differ by "
                                + diff
                                + " > "
                                + atol
                                + " + "
                                + rtol
                                + " |expected| at element "
                                + i
                                + ": expected "
                                + e[i]
                                + ", got "
                                + a[i]
                                + " (largest difference anywhere "
                                + maxAbsDiff(e, a)
                                + ")");
            }
        }
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
}
