package org.peft4j.parallel.testing;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.Random;

/** Arrays drawn from a seeded Java {@link Random}: the same on every rank and every engine. */
public final class RandomArrays {

    private RandomArrays() {}

    /**
     * Draws {@code N(0, scale^2)} values.
     *
     * @param manager the owner
     * @param seed the seed
     * @param scale the standard deviation
     * @param shape the shape
     * @return a float32 array
     */
    public static NDArray gaussian(NDManager manager, long seed, double scale, long... shape) {
        Random random = new Random(seed);
        float[] values = new float[(int) new Shape(shape).size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (scale * random.nextGaussian());
        }
        return manager.create(values, new Shape(shape));
    }
}
