package org.peft4j.core.lm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * Generates text from a block that follows the {@link CausalLanguageModel} convention: greedy or
 * sampled, a batch of prompts at once (left-padded and masked), stopping a row at EOS, with the
 * key/value cache.
 *
 * <p>Lengths: a row's prompt and its {@code maxNewTokens} must fit in the model's context ({@link
 * CausalLanguageModel#getMaxPositions()}) together, with or without the cache. A prompt for which
 * they do not is refused before anything runs with a {@link ContextOverflowException}, naming both
 * lengths and the context, unless the config asks for {@link PromptTruncation#LEFT}.
 *
 * <p>Memory: every step runs in a sub-manager closed at the end of the step; only the cache
 * survives a step, and the previous one is closed when it is replaced.
 */
public final class CausalLMGenerator {

    private static final Logger logger = LoggerFactory.getLogger(CausalLMGenerator.class);

    private final Block model;
    private final int numLayers;
    private final int maxPositions;

    /**
     * Creates a generator.
     *
     * @param model the model (a {@link CausalLanguageModel}, or a block wrapping one, such as an
     *     adapter model, whose context is then the wrapped model's: {@link
     *     CausalLanguageModel#maxPositionsOf(Block)})
     * @param numLayers the model's decoder layers: the output holds {@code 2 * numLayers} cache
     *     arrays
     */
    public CausalLMGenerator(Block model, int numLayers) {
        this.model = model;
        this.numLayers = numLayers;
        this.maxPositions = CausalLanguageModel.maxPositionsOf(model);
    }

    /**
     * Creates a generator for a causal language model.
     *
     * @param model the model
     */
    public CausalLMGenerator(CausalLanguageModel model) {
        this(model, model.getNumHiddenLayers());
    }

    /**
     * Continues each prompt.
     *
     * @param prompts token ids, one array per row, each at least one token long
     * @param config how to pick tokens and when to stop
     * @param manager the manager under which the temporary arrays live (closed before returning)
     * @return per row, the prompt (cut on the left if the config asked for it) followed by the
     *     generated tokens (ending with EOS if one was generated)
     * @throws IllegalArgumentException if a prompt is empty
     * @throws ContextOverflowException if a prompt and {@code maxNewTokens} do not fit in the
     *     model's context and the config does not cut prompts, or {@code maxNewTokens} alone takes
     *     the whole context
     */
    public List<int[]> generate(List<int[]> prompts, GenerationConfig config, NDManager manager) {
        return generate(prompts, config, manager, sequences -> {});
    }

    /**
     * Continues each prompt, reporting every step.
     *
     * @param prompts token ids, one array per row, each at least one token long
     * @param config how to pick tokens and when to stop
     * @param manager the manager under which the temporary arrays live (closed before returning)
     * @param onStep called after each step with every row's tokens so far (for streaming output)
     * @return per row, the prompt (cut on the left if the config asked for it) followed by the
     *     generated tokens (ending with EOS if one was generated)
     * @throws IllegalArgumentException if a prompt is empty
     * @throws ContextOverflowException if a prompt and {@code maxNewTokens} do not fit in the
     *     model's context and the config does not cut prompts, or {@code maxNewTokens} alone takes
     *     the whole context
     */
    public List<int[]> generate(
            List<int[]> prompts,
            GenerationConfig config,
            NDManager manager,
            Consumer<List<int[]>> onStep) {
        int rows = prompts.size();
        int longest = 0;
        // every row is checked before the first forward pass, so nothing runs for a batch that
        // cannot finish
        List<int[]> sequences = new ArrayList<>(rows);
        for (int b = 0; b < rows; b++) {
            int[] prompt = fit(prompts.get(b), b, rows, config);
            sequences.add(prompt);
            longest = Math.max(longest, prompt.length);
        }
        int[] padding = new int[rows];
        for (int b = 0; b < rows; b++) {
            padding[b] = longest - sequences.get(b).length;
        }
        // a finished row keeps being fed (pad tokens, ignored) so that all rows stay aligned
        int[] finalLength = new int[rows];
        Arrays.fill(finalLength, -1);
        TokenSampler sampler = new TokenSampler(config);
        ParameterStore parameters = new ParameterStore(manager, false);
        try (NDManager session = manager.newSubManager()) {
            NDList cache = null;
            int cached = 0;
            for (int step = 0; step < config.getMaxNewTokens(); step++) {
                int total = longest + step;
                int from = config.isUseCache() && cache != null ? cached : 0;
                try (NDManager scope = session.newSubManager()) {
                    NDList input = input(scope, sequences, padding, config, from, total);
                    if (from > 0) {
                        input.addAll(cache);
                    }
                    NDList output = model.forward(parameters, input, false);
                    NDArray last = output.get(0).get(":, -1, :");
                    int vocab = (int) last.getShape().get(1);
                    float[] logits = last.toType(DataType.FLOAT32, false).toFloatArray();
                    if (config.isUseCache()) {
                        NDList next = new NDList(output.subList(1, 1 + 2 * numLayers));
                        next.attach(session);
                        if (cache != null) {
                            cache.close();
                        }
                        cache = next;
                        cached = total;
                    }
                    boolean all = true;
                    for (int b = 0; b < rows; b++) {
                        boolean done = finalLength[b] >= 0;
                        int token =
                                done
                                        ? config.getPadTokenId()
                                        : sampler.next(logits, b * vocab, vocab);
                        sequences.set(b, append(sequences.get(b), token));
                        if (!done && config.isEos(token)) {
                            finalLength[b] = sequences.get(b).length;
                        }
                        all &= finalLength[b] >= 0;
                    }
                    onStep.accept(trimmed(sequences, finalLength));
                    if (all) {
                        break;
                    }
                }
            }
        }
        return trimmed(sequences, finalLength);
    }

    /**
     * Returns a prompt that fits in the context with the config's new tokens: the prompt itself,
     * or its first token and its end when the config cuts on the left.
     */
    private int[] fit(int[] prompt, int row, int rows, GenerationConfig config) {
        String which = rows == 1 ? "the prompt" : "prompt " + row + " (of " + rows + ")";
        if (prompt.length == 0) {
            throw new IllegalArgumentException(which + " is empty; start it with BOS at least");
        }
        int maxNewTokens = config.getMaxNewTokens();
        long needed = (long) prompt.length + maxNewTokens;
        if (needed <= maxPositions) {
            return prompt;
        }
        PromptTruncation truncation = config.getPromptTruncation();
        if (truncation == PromptTruncation.NONE) {
            throw new ContextOverflowException(
                    which
                            + " of "
                            + prompt.length
                            + " tokens and maxNewTokens "
                            + maxNewTokens
                            + " need "
                            + needed
                            + " positions, but the model's context is "
                            + maxPositions
                            + ": shorten the prompt, lower maxNewTokens, or cut prompts on the"
                            + " left with optPromptTruncation(PromptTruncation.LEFT)",
                    prompt.length,
                    maxNewTokens,
                    maxPositions,
                    truncation);
        }
        int keep = maxPositions - maxNewTokens;
        if (keep < 1) {
            throw new ContextOverflowException(
                    "maxNewTokens "
                            + maxNewTokens
                            + " leaves no room for a prompt in the model's context of "
                            + maxPositions
                            + " positions; lower it to "
                            + (maxPositions - 1)
                            + " or less",
                    prompt.length,
                    maxNewTokens,
                    maxPositions,
                    truncation);
        }
        int[] cut = new int[keep];
        cut[0] = prompt[0];
        System.arraycopy(prompt, prompt.length - (keep - 1), cut, 1, keep - 1);
        logger.info(
                "{} of {} tokens cut on the left to {} (its first token and its last {}), leaving"
                        + " room for {} new tokens in the model's context of {}",
                which,
                prompt.length,
                keep,
                keep - 1,
                maxNewTokens,
                maxPositions);
        return cut;
    }

    private static List<int[]> trimmed(List<int[]> sequences, int[] finalLength) {
        List<int[]> out = new ArrayList<>(sequences.size());
        for (int b = 0; b < sequences.size(); b++) {
            int[] sequence = sequences.get(b);
            out.add(finalLength[b] >= 0 ? Arrays.copyOf(sequence, finalLength[b]) : sequence);
        }
        return out;
    }

    /**
     * Builds the model input for tokens {@code from .. total-1} of the left-padded batch: ids,
     * positions (counting only real tokens) and the mask over all {@code total} positions.
     */
    private static NDList input(
            NDManager scope,
            List<int[]> sequences,
            int[] padding,
            GenerationConfig config,
            int from,
            int total) {
        int rows = sequences.size();
        int width = total - from;
        long[] ids = new long[rows * width];
        long[] positions = new long[rows * width];
        long[] mask = new long[rows * total];
        for (int b = 0; b < rows; b++) {
            int[] sequence = sequences.get(b);
            int pad = padding[b];
            for (int j = 0; j < total; j++) {
                boolean real = j >= pad;
                mask[b * total + j] = real ? 1 : 0;
                if (j >= from) {
                    int k = b * width + j - from;
                    ids[k] = real ? sequence[j - pad] : config.getPadTokenId();
                    positions[k] = real ? j - pad : 0;
                }
            }
        }
        return new NDList(
                scope.create(ids, new Shape(rows, width)),
                scope.create(positions, new Shape(rows, width)),
                scope.create(mask, new Shape(rows, total)));
    }

    private static int[] append(int[] sequence, int token) {
        int[] out = Arrays.copyOf(sequence, sequence.length + 1);
        out[sequence.length] = token;
        return out;
    }
}
