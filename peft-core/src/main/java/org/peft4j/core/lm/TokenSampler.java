package org.peft4j.core.lm;

import java.util.Arrays;
import java.util.Random;

/** Picks the next token from one row of logits, as {@link GenerationConfig} says. */
final class TokenSampler {

    private final GenerationConfig config;
    private final Random random;

    TokenSampler(GenerationConfig config) {
        this.config = config;
        this.random = new Random(config.getSeed());
    }

    int next(float[] logits, int offset, int vocab) {
        if (config.getTemperature() == 0) {
            return argMax(logits, offset, vocab);
        }
        double[] probs = new double[vocab];
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        Integer[] order = new Integer[vocab];
        for (int i = 0; i < vocab; i++) {
            probs[i] = Math.exp((logits[offset + i] - max) / config.getTemperature());
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(probs[b], probs[a]));
        int keep = config.getTopK() > 0 ? Math.min(config.getTopK(), vocab) : vocab;
        double total = 0;
        for (int i = 0; i < keep; i++) {
            total += probs[order[i]];
        }
        // nucleus: the smallest prefix of the sorted tokens whose mass reaches topP
        double mass = 0;
        int nucleus = 0;
        while (nucleus < keep && mass < config.getTopP() * total) {
            mass += probs[order[nucleus++]];
        }
        double draw = random.nextDouble() * mass;
        for (int i = 0; i < nucleus; i++) {
            draw -= probs[order[i]];
            if (draw <= 0) {
                return order[i];
            }
        }
        return order[nucleus - 1];
    }

    private static int argMax(float[] logits, int offset, int vocab) {
        int best = 0;
        for (int i = 1; i < vocab; i++) {
            if (logits[offset + i] > logits[offset + best]) {
                best = i;
            }
        }
        return best;
    }
}
