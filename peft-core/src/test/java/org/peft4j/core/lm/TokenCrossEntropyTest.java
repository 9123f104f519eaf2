package org.peft4j.core.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

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
                count++;
                correct += best == target ? 1 : 0;
            }
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray l = manager.create(logits, new Shape(batch, length, vocab));
            NDArray y = manager.create(labels, new Shape(batch, length));
            NDArray[] parts = TokenCrossEntropy.sumAndCount(l, y);
            assertEquals(sum, parts[0].getFloat(), 1e-4);
            assertEquals(count, (long) parts[1].getFloat());
            assertEquals(sum / count, TokenCrossEntropy.loss(l, y).getFloat(), 1e-5);
            assertArrayEquals(new long[] {correct, count}, TokenCrossEntropy.accuracy(l, y));
        }
    }
}
