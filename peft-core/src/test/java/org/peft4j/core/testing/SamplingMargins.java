package org.peft4j.core.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.peft4j.core.lm.GenerationConfig;

import java.util.Arrays;
import java.util.Locale;
import java.util.Random;

/**
 * What makes two seeded samplings agree token for token, as {@link GreedyMargins} does for greedy
 * decoding.
 *
 * <p>The sampler ({@code org.peft4j.core.lm.TokenSampler}) turns a row of logits into
 * probabilities {@code exp((l - max) / T)}, keeps the top k, then the nucleus (the smallest prefix
 * of the sorted tokens whose mass reaches {@code top_p} of the kept), draws {@code u mass} with
 * {@code u} from {@code java.util.Random(seed)}, one draw a step, and walks the nucleus until the
 * draw is used up. Logits that move by at most {@code tolerance} move every probability by a factor
 * within {@code exp(+-2 tolerance / T)}, so every partial sum, the nucleus mass and the total by
 * less than {@code exp(4 tolerance / T) - 1} of the total; near-equal probabilities may also swap
 * places in the sorted order, moving a partial sum by as much again, hence {@code eps = 2 (exp(4
 * tolerance / T) - 1)}. A step is clear of rounding when
 * the draw is farther than that from the partial sums around the chosen token, the nucleus's
 * boundary is farther than that from {@code top_p} of the total, and the k-th and (k+1)-th
 * probabilities differ by more than that factor: then any computation whose logits are within
 * {@code tolerance} samples the same token. This replays the sampler's arithmetic; if the sampler
 * changes, the replay picks other tokens at clear steps and the check says so.
 */
public final class SamplingMargins {

    private SamplingMargins() {}

    /**
     * Returns, for each sampled token, how clear of rounding its step is: the smallest distance
     * of the draw or a cut-off from what may move it, in units of {@code eps} (see the class
     * comment); above 1 the step samples the same token for any logits within {@code tolerance}.
     * Should replaying the sampler on these logits give another token (a step so near a boundary
     * that the logits' own rounding crossed it), that step and the rest get 0.
     *
     * @param logits {@code [positions, vocab]} of one row, from one forward pass over {@code
     *     tokens}: position {@code t - 1} gives the distribution of token {@code t}
     * @param vocab the vocabulary size
     * @param tokens the prompt followed by the sampled tokens (one row, so one draw a step)
     * @param promptLength how many of {@code tokens} are the prompt
     * @param config the sampling settings and seed, with a temperature above 0
     * @param tolerance how far the logits of the computations compared can be from these
     * @param what what is sampled, for the message
     * @return {@code tokens.length - promptLength} clearances
     */
    public static double[] clearances(
            float[] logits,
            int vocab,
            int[] tokens,
            int promptLength,
            GenerationConfig config,
            double tolerance,
            String what) {
        double temperature = config.getTemperature();
        assertTrue(temperature > 0, "sampling, not greedy decoding");
        double eps = 2 * Math.expm1(4 * tolerance / temperature);
        Random random = new Random(config.getSeed());
        double[] out = new double[tokens.length - promptLength];
        for (int t = promptLength; t < tokens.length; t++) {
            int offset = (t - 1) * vocab;
            double[] probs = new double[vocab];
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < vocab; i++) {
                max = Math.max(max, logits[offset + i]);
            }
            Integer[] order = new Integer[vocab];
            for (int i = 0; i < vocab; i++) {
                probs[i] = Math.exp((logits[offset + i] - max) / temperature);
                order[i] = i;
            }
            Arrays.sort(order, (a, b) -> Double.compare(probs[b], probs[a]));
            int keep = config.getTopK() > 0 ? Math.min(config.getTopK(), vocab) : vocab;
            double total = 0;
            for (int i = 0; i < keep; i++) {
                total += probs[order[i]];
            }
            double clearance = Double.POSITIVE_INFINITY;
            if (keep < vocab) {
                // the kept set: the k-th and (k+1)-th must not swap
                double ratio = probs[order[keep - 1]] / probs[order[keep]] - 1;
                clearance = Math.min(clearance, ratio / eps);
            }
            double target = config.getTopP() * total;
            double mass = 0;
            int nucleus = 0;
            while (nucleus < keep && mass < target) {
                mass += probs[order[nucleus++]];
            }
            if (nucleus < keep) {
                // the nucleus's end: the sums before and at it must stay on their sides of top_p
                clearance = Math.min(clearance, (mass - target) / (eps * total));
                clearance =
                        Math.min(
                                clearance,
                                (target - (mass - probs[order[nucleus - 1]])) / (eps * total));
            }
            double draw = random.nextDouble() * mass;
            int chosen = order[nucleus - 1];
            double before = 0;
            for (int i = 0; i < nucleus; i++) {
                double after = before + probs[order[i]];
                if (draw - after <= 0) {
                    chosen = order[i];
                    if (i > 0) { // the first token's lower end is 0, whatever the logits
                        clearance = Math.min(clearance, (draw - before) / (eps * total));
                    }
                    if (i < nucleus - 1) { // the last one's upper end is the whole nucleus
                        clearance = Math.min(clearance, (after - draw) / (eps * total));
                    }
                    break;
                }
                before = after;
            }
            if (chosen != tokens[t]) {
                // only a step near a boundary may sample otherwise on these logits
                assertTrue(
                        clearance <= 1,
                        what
                                + ": replaying the sampler gives token "
                                + chosen
                                + " at "
                                + t
                                + ", clear of rounding, not "
                                + tokens[t]
                                + ": the replay no longer follows TokenSampler");
                return out; // this step and the rest stay 0
            }
            out[t - promptLength] = clearance;
        }
        return out;
    }

    /**
     * Returns where seeded sampling of {@code tokens} first comes near enough a boundary that
     * rounding may sample another token: up to there, any computation whose logits are within
     * {@code tolerance} samples exactly these tokens.
     *
     * @return the index in {@code tokens} of the first step not clear of rounding, or {@code
     *     tokens.length}
     * @see #clearances
     */
    public static int firstUnclearStep(
            float[] logits,
            int vocab,
            int[] tokens,
            int promptLength,
            GenerationConfig config,
            double tolerance,
            String what) {
        double[] clearances =
                clearances(logits, vocab, tokens, promptLength, config, tolerance, what);
        int t = 0;
        double smallest = Double.POSITIVE_INFINITY;
        while (t < clearances.length && clearances[t] > 1) {
            smallest = Math.min(smallest, clearances[t]);
            t++;
        }
        ArrayAssertions.record(
                what + " (sampling: steps clear of rounding, of " + clearances.length + ")",
                t,
                smallest);
        return promptLength + t;
    }

    /**
     * Asserts that two samplings with the same seed are equal, or that they first part at or
     * after a step that is not clear of rounding ({@link #firstUnclearStep} on the reference's
     * logits). A sampler that ignored its seed, or logits that differ by more than rounding, part
     * at a clear step and fail.
     *
     * @param expected the reference sampling: the prompt and its tokens
     * @param actual the sampling compared with it
     * @param logits the logits of one full pass over {@code expected}
     * @param vocab the vocabulary size
     * @param promptLength the prompt's length
     * @param config the sampling settings and seed
     * @param tolerance how far the logits of the computations compared can be from these
     * @param what what is sampled, for the message
     * @return where the samplings part, or {@code expected.length} if they are equal
     */
    public static int assertSameOrNearBoundary(
            int[] expected,
            int[] actual,
            float[] logits,
            int vocab,
            int promptLength,
            GenerationConfig config,
            double tolerance,
            String what) {
        int unclear =
                firstUnclearStep(logits, vocab, expected, promptLength, config, tolerance, what);
        int d = 0;
        while (d < expected.length && d < actual.length && expected[d] == actual[d]) {
            d++;
        }
        if (d == expected.length && d == actual.length) {
            return d;
        }
        assertTrue(
                d >= unclear,
                String.format(
                        Locale.ROOT,
                        "%s: the samplings part at token %d, but every step before %d is clear of"
                                + " rounding (logits within %.3e):%n%s%n%s",
                        what,
                        d,
                        unclear,
                        tolerance,
                        Arrays.toString(expected),
                        Arrays.toString(actual)));
        return d;
    }
}
