package org.peft4j.train;

import java.util.Locale;

/**
 * Loss, perplexity and token accuracy over the target tokens of a data set or step.
 *
 * @param loss the mean cross-entropy per target token
 * @param accuracy the fraction of target tokens predicted exactly (greedy)
 * @param tokens the number of target tokens counted
 */
public record Metrics(double loss, double accuracy, long tokens) {

    /**
     * Returns the perplexity.
     *
     * @return {@code exp(loss)}
     */
    public double perplexity() {
        return Math.exp(loss);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return String.format(
                Locale.ROOT,
                "loss %.4f  perplexity %.3f  token accuracy %.4f  (%d tokens)",
                loss,
                perplexity(),
                accuracy,
                tokens);
    }
}
