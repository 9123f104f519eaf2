package org.peft4j.models.llama;

import static org.peft4j.core.testing.ArrayAssertions.gamma;


/**
 * The bounds that the parity tests derive from float32 rounding: how many sums a Llama chains
 * behind one output, the {@code n} of Higham's {@code gamma_n}, and what AdamW makes of gradients
 * that differ by rounding.
 *
 * <p>A parallel run computes the same sums as one process, split at other points and added in
 * another order, so each output differs from the exact value, and from the other run's, by up to
 * {@code gamma_n} times the magnitudes summed. The tests scale that by the largest output of the
 * array (a normalised model's sums have terms of that size), never by the element's own value: an
 * element that cancels to near zero keeps the absolute error of its terms.
 *
 * <p>AdamW's update {@code lr_t m^ / (sqrt(v^) + eps)} does not depend on the size of an element's
 * gradients, only on their signs and ratios over the steps, and is at most {@code B_t lr_t} ({@link
 * #adamStepBound}). An element whose gradient is within rounding of zero (its terms cancelled)
 * steps by up to {@code lr_t} in a direction the rounding picks, the first steps most ({@code m^ /
 * sqrt(v^) = +-1} at {@code t = 1}). So after training an element of one run may be anywhere within
 * {@code 2 sum_t B_t lr_t} of the other's ({@link #adamElementBound}), whatever the layouts. Over a
 * whole adapter that is rare: with a tensor's gradients spread over {@code [0, G]} and rounding
 * errors up to {@code rho G}, an element of gradient {@code g} takes a step that differs by about
 * {@code min(2 B_t, rho G / g) lr_t}, whose mean square over {@code g} uniform in {@code [0, G]} is
 * about {@code 4 B_t rho lr_t^2}; the root mean square difference of the trained tensors is then at
 * most {@code 2 sqrt(rho) sum_t sqrt(B_t) lr_t} ({@link #adamRmsBound}). A run that trains
 * something else (a missing gradient reduction, another batch, another initial adapter) moves most
 * elements by another step of about {@code lr_t} and is several times over it.
 */
public final class ParityBounds {

    /** AdamW's moment decays, as the fine-tuner and the tests set them. */
    public static final double BETA1 = 0.9;

    public static final double BETA2 = 0.999;

    private ParityBounds() {}

    /**
     * Returns the longest chain of sums behind one logit: per layer an RMSNorm (hidden size), a
     * projection and its LoRA branch (hidden size + r), a score (head size), the softmax and the
     * weighted sum over the positions (twice the positions), {@code o_proj} (hidden size + r), an
     * RMSNorm (hidden size), {@code gate_proj} or {@code up_proj} (hidden size + r) and {@code
     * down_proj} (intermediate size + r), and Qwen3's per-head norm (head size) and a bias where
     * the family has them; then the final norm and the head (hidden size each).
     *
     * @param config the model's sizes
     * @param positions the most positions attended to (prompt, prefix and cache included)
     * @param r the LoRA rank, 0 without LoRA
     * @return the number of terms
     */
    public static int forwardTerms(LlamaConfig config, int positions, int r) {
        int hidden = config.getHiddenSize();
        int layer =
                hidden
                        + (hidden + r)
                        + config.getHeadDim()
                        + 2 * positions
                        + (hidden + r)
                        + hidden
                        + (hidden + r)
                        + (config.getIntermediateSize() + r)
                        + (config.isQkNorm() ? config.getHeadDim() : 0) // Qwen3's head norm
                        + (config.isQkvBias() || config.isMlpBias() ? 1 : 0); // a bias added
        return config.getNumHiddenLayers() * layer + 2 * hidden;
    }

    /**
     * Returns the chain behind one token's loss: the logits' and the log-sum-exp over the
     * vocabulary.
     *
     * @param config the model's sizes
     * @param positions the most positions attended to
     * @param r the LoRA rank, 0 without LoRA
     * @return the number of terms
     */
    public static int lossTerms(LlamaConfig config, int positions, int r) {
        return forwardTerms(config, positions, r) + config.getVocabSize();
    }

    /**
     * Returns the chain behind one element of a trainable gradient: the loss's, run back by the
     * backward pass, and the sum over every position of the batch that a weight's gradient takes.
     *
     * @param config the model's sizes
     * @param positions the most positions attended to
     * @param r the LoRA rank, 0 without LoRA
     * @param batchPositions the positions of a batch, all examples together
     * @return the number of terms
     */
    public static int gradientTerms(LlamaConfig config, int positions, int r, int batchPositions) {
        return 2 * lossTerms(config, positions, r) + batchPositions;
    }

    /**
     * Returns the largest factor {@code |m^ / sqrt(v^)|} of AdamW's step {@code t}, whatever the
     * gradients: with {@code m = (1 - b1) sum b1^(t-i) g_i} and {@code v = (1 - b2) sum b2^(t-i)
     * g_i^2}, Cauchy-Schwarz gives {@code |m| <= (1 - b1) sqrt(sum_k (b1^2 / b2)^k) sqrt(v / (1 -
     * b2))}; with the bias corrections that is 1 at {@code t = 1}, 1.016 at {@code t = 6} and 1.16
     * at {@code t = 20}. Clipping scales a step's gradient as a whole and epsilon only shrinks the
     * step, so neither raises it.
     *
     * @param t the step, from 1
     * @return {@code B_t}
     */
    public static double adamStepBound(int t) {
        double sum = 0;
        for (int k = 0; k < t; k++) {
            sum += Math.pow(BETA1 * BETA1 / BETA2, k);
        }
        return (1 - BETA1)
                / (1 - Math.pow(BETA1, t))
                * Math.sqrt((1 - Math.pow(BETA2, t)) / (1 - BETA2))
                * Math.sqrt(sum);
    }

    /**
     * Returns how far apart one element of two runs' adapters can end: {@code 2 sum_t B_t lr_t}.
     *
     * @param rates the learning rate of each step
     * @return the bound per element
     */
    public static double adamElementBound(double[] rates) {
        double travel = 0;
        for (int t = 1; t <= rates.length; t++) {
            travel += adamStepBound(t) * rates[t - 1];
        }
        return 2 * travel;
    }

    /**
     * Returns the bound on the root mean square difference of two runs' adapters: {@code 2
     * sqrt(rho) sum_t sqrt(B_t) lr_t}.
     *
     * @param rates the learning rate of each step
     * @param gradientTerms the chain of sums behind one gradient; {@code rho = gamma_n} of it
     * @return the bound on the whole
     */
    public static double adamRmsBound(double[] rates, int gradientTerms) {
        double rho = gamma(gradientTerms);
        double sum = 0;
        for (int t = 1; t <= rates.length; t++) {
            sum += Math.sqrt(rho * adamStepBound(t)) * rates[t - 1];
        }
        return 2 * sum;
    }
}
