package org.peft4j.core.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertWithin;
import static org.peft4j.core.testing.ArrayAssertions.gamma;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Test;

import java.util.Random;

class TokenCrossEntropyTest {

    @Test
    void lossAndAccuracyCountOnlyTargetTokensShiftedByOne() {
        int batch = 2;
        int length = 5;
        int vocab = 7;
        Random random = new Random(3);
        float[] logits = new float[batch * length * vocab];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) random.nextGaussian() * 2;
        }
        long[] labels = {-100, -100, 3, 4, 5, -100, 1, 2, -100, 6};
        // independent reference: position t predicts labels[t + 1]
        double sum = 0;
        double magnitude = 0; // sum over counted tokens of |x_t - max| + log z + 1, see below
        long count = 0;
        long correct = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < length - 1; t++) {
                long target = labels[b * length + t + 1];
                if (target < 0) {
                    continue;
                }
                int offset = (b * length + t) * vocab;
                double max = Double.NEGATIVE_INFINITY;
                int best = 0;
                for (int v = 0; v < vocab; v++) {
                    if (logits[offset + v] > max) {
                        max = logits[offset + v];
                        best = v;
                    }
                }
                double z = 0;
                for (int v = 0; v < vocab; v++) {
                    z += Math.exp(logits[offset + v] - max);
                }
                sum += -(logits[offset + (int) target] - max - Math.log(z));
                magnitude += Math.abs(logits[offset + (int) target] - max) + Math.log(z) + 1;
                count++;
                correct += best == target ? 1 : 0;
            }
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray l = manager.create(logits, new Shape(batch, length, vocab));
            NDArray y = manager.create(labels, new Shape(batch, length));
            NDArray[] parts = TokenCrossEntropy.sumAndCount(l, y);
            // float32 log-softmax, x_t - max - log(sum_v exp(x_v - max)): the subtraction and the
            // log round by u of |x_t - max| and |log z|; z, a sum of vocab exponentials each
            // within 2u (a vectorised exp is good to about 1 ulp), is within gamma(vocab + 2)
            // relative, which the log turns into an absolute error. Twice gamma(vocab + 4) per
            // unit of |x_t - max| + log z + 1 covers a token; summing the batch * length terms
            // (the uncounted ones are exact zeros) adds gamma(batch * length) of the same.
            double bound = (2 * gamma(vocab + 4) + gamma(batch * length)) * magnitude;
            assertWithin(
                    new double[] {sum},
                    new float[] {parts[0].getFloat()},
                    new double[] {bound},
                    "the summed loss against a double-precision log-softmax");
            assertEquals(count, (long) parts[1].getFloat(), "the count is an exact integer");
            // the mean: the sum's bound over the (exact) count, and the division's own rounding
            assertWithin(
                    new double[] {sum / count},
                    new float[] {TokenCrossEntropy.loss(l, y).getFloat()},
                    new double[] {bound / count + U * sum / count},
                    "the mean loss against a double-precision log-softmax");
            // argmax of the same float32 values, which have no ties here: exact integers
            assertArrayEquals(new long[] {correct, count}, TokenCrossEntropy.accuracy(l, y));
        }
    }
}
