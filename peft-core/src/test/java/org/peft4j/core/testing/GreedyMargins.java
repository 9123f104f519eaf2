package org.peft4j.core.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Locale;

/**
 * What makes two greedy decodings agree token for token.
 *
 * <p>Two computations of the same model (cached or not, merged or not, batched or alone, on
 * another CPU) give logits that differ by rounding. Greedy decoding turns logits into integers, so
 * token sequences are equal exactly when, at every step, the chosen token's logit exceeds every
 * other by more than the two computations can differ. If both are within {@code tolerance} of a
 * reference, a margin above {@code 2 tolerance} guarantees the same choice; by induction over the
 * steps (the same tokens so far give the same input) the whole sequences agree.
 *
 * <p>The reference logits are those of one full forward pass over the generated sequence:
 * position {@code t - 1} predicts token {@code t}.
 */
public final class GreedyMargins {

    private GreedyMargins() {}

    /**
     * Returns, for each generated token, its logit minus the largest logit of any other token: the
     * greedy margin, negative if the token is not the argmax.
     *
     * @param logits {@code [positions, vocab]} of one row, from a forward pass over {@code tokens}
     *     (at least {@code tokens.length - 1} positions)
     * @param vocab the vocabulary size
     * @param tokens the prompt followed by the generated tokens
     * @param promptLength how many of {@code tokens} are the prompt
     * @return {@code tokens.length - promptLength} margins
     */
    public static double[] margins(float[] logits, int vocab, int[] tokens, int promptLength) {
        assertTrue(promptLength >= 1, "a prompt of at least one token");
        assertTrue(
                logits.length >= (long) (tokens.length - 1) * vocab,
                "logits for every position but the last");
        double[] out = new double[tokens.length - promptLength];
        for (int t = promptLength; t < tokens.length; t++) {
            int row = (t - 1) * vocab;
            double other = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                if (v != tokens[t]) {
                    other = Math.max(other, logits[row + v]);
                }
            }
            out[t - promptLength] = logits[row + tokens[t]] - other;
        }
        return out;
    }

    /**
     * Asserts that every generated token is the reference logits' argmax by more than {@code 2
     * tolerance}: then any computation whose logits are within {@code tolerance} of the reference
     * generates exactly these tokens, so comparing such sequences for equality is sound.
     *
     * @param logits the reference logits, as for {@link #margins}
     * @param vocab the vocabulary size
     * @param tokens the prompt followed by the generated tokens
     * @param promptLength how many of {@code tokens} are the prompt
     * @param tolerance how far the logits of the computations compared can be from the reference
     * @param what what is decoded, for the message
     * @return the smallest margin
     */
    public static double assertClearGreedyPath(
            float[] logits,
            int vocab,
            int[] tokens,
            int promptLength,
            double tolerance,
            String what) {
        double[] margins = margins(logits, vocab, tokens, promptLength);
        int worst = 0;
        for (int i = 1; i < margins.length; i++) {
            if (margins[i] < margins[worst]) {
                worst = i;
            }
        }
        double smallest = margins.length == 0 ? Double.POSITIVE_INFINITY : margins[worst];
        ArrayAssertions.record(what + " (greedy margin)", 2 * tolerance / smallest, smallest);
        assertTrue(
                smallest >= -2 * tolerance,
                String.format(
                        Locale.ROOT,
                        "%s: generated token %d (id %d) trails the reference's argmax by %.3e,"
                                + " more than rounding (2 x %.3e) explains: the decoding computed"
                                + " other logits than one full pass does",
                        what,
                        worst,
                        margins.length == 0 ? -1 : tokens[promptLength + worst],
                        -smallest,
                        tolerance));
        assertTrue(
                smallest > 2 * tolerance,
                String.format(
                        Locale.ROOT,
                        "%s: generated token %d (id %d) leads by %.3e, not more than 2 x %.3e:"
                                + " a near tie, where rounding may pick another token, so exact"
                                + " equality of the sequences is not guaranteed",
                        what,
                        worst,
                        margins.length == 0 ? -1 : tokens[promptLength + worst],
                        smallest,
                        tolerance));
        return smallest;
    }

    /**
     * Returns where greedy decoding of {@code tokens} first comes within {@code 2 tolerance} of a
     * tie: up to there, any computation whose logits are within {@code tolerance} of the reference
     * generates exactly these tokens. For comparing decodings (such as printed texts) up to that
     * point, and wholly when it is the end.
     *
     * @param logits the reference logits, as for {@link #margins}
     * @param vocab the vocabulary size
     * @param tokens the prompt followed by the generated tokens
     * @param promptLength how many of {@code tokens} are the prompt
     * @param tolerance how far the logits of the computations compared can be from the reference
     * @param what what is decoded, for the record
     * @return the index in {@code tokens} of the first step not clear of rounding, or {@code
     *     tokens.length}
     */
    public static int firstUnclearStep(
            float[] logits,
            int vocab,
            int[] tokens,
            int promptLength,
            double tolerance,
            String what) {
        double[] margins = margins(logits, vocab, tokens, promptLength);
        int t = 0;
        while (t < margins.length && margins[t] > 2 * tolerance) {
            t++;
        }
        ArrayAssertions.record(
                what + " (greedy: steps clear of rounding, of " + margins.length + ")",
                t,
                t < margins.length ? margins[t] : Double.NaN);
        return promptLength + t;
    }
}
