package org.peft4j.parallel.testing;

import static org.peft4j.core.testing.ArrayAssertions.assertWithin;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.gamma;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/**
 * Linear and LoRA layers in float64, with the sum of the magnitudes of their terms: the reference
 * of Higham's bound {@code |fl(x . y) - x . y| <= gamma_n sum |x_i y_i|}, which holds for a float32
 * result summed in any order, on any number of ranks.
 *
 * <p>Each method returns {@code {value, magnitude}}, both float64, of the shape of the result.
 */
public final class ExactLayers {

    private ExactLayers() {}

    /**
     * Returns {@code x W^T + b} and {@code |x| |W|^T + |b|}.
     *
     * @param x the input {@code [..., I]}
     * @param w the weight {@code [O, I]}
     * @param b the bias {@code [O]}, or {@code null}
     * @return the value and the magnitude, {@code [..., O]}
     */
    public static NDArray[] linear(NDArray x, NDArray w, NDArray b) {
        NDArray value = wide(x).matMul(wide(w).transpose());
        NDArray magnitude = wide(x).abs().matMul(wide(w).abs().transpose());
        if (b != null) {
            value = value.add(wide(b));
            magnitude = magnitude.add(wide(b).abs());
        }
        return new NDArray[] {value, magnitude};
    }

    /**
     * Returns the LoRA layer {@code x W^T + b + s (x A^T) B^T} and its magnitude.
     *
     * @param x the input {@code [..., I]}
     * @param w the base weight {@code [O, I]}
     * @param b the bias {@code [O]}, or {@code null}
     * @param a the LoRA A {@code [r, I]}
     * @param bb the LoRA B {@code [O, r]}
     * @param scaling {@code s}
     * @return the value and the magnitude, {@code [..., O]}
     */
    public static NDArray[] lora(
            NDArray x, NDArray w, NDArray b, NDArray a, NDArray bb, double scaling) {
        NDArray[] base = linear(x, w, b);
        NDArray branch = wide(x).matMul(wide(a).transpose()).matMul(wide(bb).transpose());
        NDArray size =
                wide(x).abs().matMul(wide(a).abs().transpose()).matMul(wide(bb).abs().transpose());
        return new NDArray[] {
            base[0].add(branch.mul(scaling)), base[1].add(size.mul(Math.abs(scaling)))
        };
    }

    /**
     * Returns the merged weight {@code W + s B A} and its magnitude {@code |W| + |s| |B| |A|}.
     *
     * @param w the base weight {@code [O, I]}
     * @param a the LoRA A {@code [r, I]}
     * @param bb the LoRA B {@code [O, r]}
     * @param scaling {@code s}
     * @return the value and the magnitude, {@code [O, I]}
     */
    public static NDArray[] merged(NDArray w, NDArray a, NDArray bb, double scaling) {
        return new NDArray[] {
            wide(w).add(wide(bb).matMul(wide(a)).mul(scaling)),
            wide(w).abs().add(wide(bb).abs().matMul(wide(a).abs()).mul(Math.abs(scaling)))
        };
    }

    /**
     * Asserts that a float32 result is within {@code gamma_n} times the magnitude of the exact
     * value, element by element.
     *
     * @param exact what {@link #linear}, {@link #lora} or {@link #merged} returned
     * @param actual the result under test, of the same shape
     * @param n the number of rounded operations behind one element
     * @param what what is compared, for the message
     */
    public static void assertWithinGamma(NDArray[] exact, NDArray actual, int n, String what) {
        double[] bound = exact[1].toDoubleArray();
        double g = gamma(n);
        for (int i = 0; i < bound.length; i++) {
            bound[i] *= g;
        }
        assertWithin(exact[0].toDoubleArray(), floats(actual), bound, what + ", within gamma_" + n);
    }

    private static NDArray wide(NDArray array) {
        return array.toType(DataType.FLOAT64, false);
    }
}
