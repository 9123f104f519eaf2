package org.peft4j.prefix.paddle;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import org.peft4j.core.io.paddle.PaddleStateFiles;
import org.peft4j.core.io.paddle.StagedWeights;
import org.peft4j.prefix.PrefixConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;

/**
 * A prefix that PaddleNLP's {@code PrefixModelForCausalLM.save_pretrained} saved, read as Hugging
 * Face's {@code prompt_embeddings [P, 2 L kvHeads headDim]}.
 *
 * <p>{@code prefix_model_state.pdparams} holds the prefix encoder's state dict (an {@code
 * nn.Sequential}): without a projection {@code 0.weight [P, 2 L kv d]}, the prefix itself; with
 * one {@code 0.weight [P, kv d]}, {@code 1.weight [kv d, proj]}, {@code 1.bias}, {@code 3.weight
 * [proj, 2 L kv d]}, {@code 3.bias} (Paddle's {@code Linear} weights are {@code [in, out]}),
 * whose output {@code tanh(E W1 + b1) W3 + b3} is the prefix, computed here once (the projection
 * is not kept: the prefix loads as a fixed table). Rank files {@code .tpRR.pdparams} are joined as
 * PaddleNLP's merge does: {@code 0.weight} along the tokens (a VocabParallelEmbedding), {@code
 * 1.weight} and {@code 1.bias} along the projection's output, {@code 3.weight} along its input.
 *
 * <p>PaddleNLP's Llama-family models split the {@code 2 L} axis of the prefix into all layers'
 * keys, then all layers' values ({@code llama_postprocess_past_key_value}); Hugging Face
 * alternates key and value layer by layer. The prefix is reordered accordingly.
 */
public final class PaddlePrefixFiles {

    /** The file {@code PrefixModelForCausalLM.save_pretrained} writes. */
    public static final String WEIGHTS_FILE = "prefix_model_state.pdparams";

    private PaddlePrefixFiles() {}

    /**
     * Returns whether a directory holds PaddleNLP's prefix weights and no Hugging Face ones.
     *
     * @param dir an adapter directory
     * @return true for a PaddleNLP directory
     * @throws IOException if the directory cannot be listed
     */
    public static boolean isPaddlePrefix(Path dir) throws IOException {
        if (PaddleStateFiles.holdsHuggingFaceWeights(dir)) {
            return false;
        }
        return Files.isRegularFile(dir.resolve(WEIGHTS_FILE))
                || PaddleStateFiles.countShards(dir, WEIGHTS_FILE) > 0;
    }

    /**
     * Reads the prefix in Hugging Face's layout.
     *
     * @param dir a PaddleNLP prefix directory
     * @param config its config
     * @param manager the manager that owns the result
     * @return {@code prompt_embeddings [P, 2 L kvHeads headDim]}, float32
     * @throws NoSuchFileException if the weights, or a rank's file, are missing
     * @throws IOException if a file is truncated, malformed or refused; the message names it
     * @throws IllegalArgumentException if a tensor is missing or of another shape than the config
     *     gives
     */
    public static NDArray promptEmbeddings(Path dir, PrefixConfig config, NDManager manager)
            throws IOException {
        try (NDManager scratch = manager.newSubManager()) {
            Map<String, NDArray> state =
                    PaddleStateFiles.readWholeOrRanks(
                            dir,
                            WEIGHTS_FILE,
                            config.getTensorParallelDegree(),
                            PaddlePrefixFiles::splitAxis,
                            scratch);
            NDArray prefix = need(dir, state, "0.weight");
            if (config.isPrefixProjection()) {
                NDArray hidden =
                        prefix.matMul(need(dir, state, "1.weight")).add(need(dir, state, "1.bias"));
                prefix =
                        hidden.tanh()
                                .matMul(need(dir, state, "3.weight"))
                                .add(need(dir, state, "3.bias"));
            }
            long tokens = config.getNumPrefixTokens();
            long layers = config.getNumHiddenLayers();
            long width = 2 * layers * config.getNumKeyValueHeads() * config.getHeadDim();
            if (!prefix.getShape().equals(new ai.djl.ndarray.types.Shape(tokens, width))) {
                throw new IllegalArgumentException(
                        dir.resolve(WEIGHTS_FILE)
                                + ": the prefix has shape "
                                + prefix.getShape()
                                + " but its config gives ["
                                + tokens
                                + ", "
                                + width
                                + "] (prefix tokens, 2 * layers * kv heads * head dim)");
            }
            // [P, 2 (key, value), L, kv d] -> [P, L, 2, kv d]: keys and values by layer
            NDArray reordered =
                    prefix.toType(ai.djl.ndarray.types.DataType.FLOAT32, false)
                            .reshape(tokens, 2, layers, -1)
                            .transpose(0, 2, 1, 3)
                            .reshape(tokens, width)
                            .duplicate();
            reordered.attach(manager);
            return reordered;
        }
    }

    /**
     * Writes the prefix as Hugging Face's {@code adapter_model.safetensors} into a temporary
     * directory for a PaddleNLP directory; any other directory is read as it is.
     *
     * @param dir an adapter directory
     * @param config its config
     * @param manager a manager for the arrays while converting
     * @return the directory to read the weights from
     * @throws IOException as {@link #promptEmbeddings}
     */
    public static StagedWeights stage(Path dir, PrefixConfig config, NDManager manager)
            throws IOException {
        return StagedWeights.stage(
                dir,
                isPaddlePrefix(dir),
                manager,
                m -> Map.of("prompt_embeddings", promptEmbeddings(dir, config, m)));
    }

    /** PaddleNLP's name_action_mappings of the prefix encoder, as axes. */
    private static int splitAxis(String key) {
        switch (key) {
            case "0.weight":
            case "3.weight":
                return 0;
            case "1.weight":
                return 1;
            case "1.bias":
                return 0;
            default:
                return -1;
        }
    }

    private static NDArray need(Path dir, Map<String, NDArray> state, String key) {
        NDArray value = state.get(key);
        if (value == null) {
            throw new IllegalArgumentException(
                    dir.resolve(WEIGHTS_FILE)
                            + ": has no "
                            + key
                            + " (it holds "
                            + state.keySet()
                            + "); check prefix_projection in prefix_config.json");
        }
        return value;
    }
}
