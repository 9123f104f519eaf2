package org.peft4j.lora.paddle;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import org.peft4j.core.io.paddle.PaddleStateFiles;
import org.peft4j.core.io.paddle.StagedWeights;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The weights of a LoRA adapter that PaddleNLP saved, read as Hugging Face's: {@code
 * lora_model_state.pdparams} ({@code LoRAModel.save_pretrained}), its rank files {@code
 * lora_model_state.tpRR.pdparams} (saved without {@code merge_tensor_parallel}; joined here as
 * PaddleNLP's merge joins them), or the unified checkpoint's {@code peft_model.safetensors} (or the
 * files {@code peft_model.safetensors.index.json} names). Names and layouts are mapped by {@link
 * PaddleLoRAKeys}.
 */
public final class PaddleLoRAFiles {

    /** The file {@code LoRAModel.save_pretrained} writes. */
    public static final String WEIGHTS_FILE = "lora_model_state.pdparams";

    /** The unified checkpoint's file (alone or listed by its index). */
    public static final String SAFE_WEIGHTS_FILE = "peft_model.safetensors";

    private PaddleLoRAFiles() {}

    /**
     * Returns whether a directory holds PaddleNLP's LoRA weights and no Hugging Face ones (which,
     * when present, are read instead).
     *
     * @param dir an adapter directory
     * @return true for a PaddleNLP directory
     * @throws IOException if the directory cannot be listed
     */
    public static boolean isPaddleAdapter(Path dir) throws IOException {
        if (PaddleStateFiles.holdsHuggingFaceWeights(dir)) {
            return false;
        }
        return Files.isRegularFile(dir.resolve(WEIGHTS_FILE))
                || PaddleStateFiles.countShards(dir, WEIGHTS_FILE) > 0
                || Files.isRegularFile(dir.resolve(SAFE_WEIGHTS_FILE))
                || Files.isRegularFile(dir.resolve(SAFE_WEIGHTS_FILE + ".index.json"));
    }

    /**
     * Reads the adapter in Hugging Face's names and layout, whole (rank files joined).
     *
     * @param dir a PaddleNLP adapter directory
     * @param degree the {@code tensor_parallel_degree} of its {@code lora_config.json}: above 1,
     *     that many rank files are read
     * @param manager the manager that owns the arrays
     * @return {@code base_model.model.<path>.lora_A.weight [r, in]}, {@code ...lora_B.weight [out,
     *     r]} and 1-D parameters, in file order
     * @throws NoSuchFileException if the weights, or one rank's file, are missing
     * @throws IOException if a file is truncated, malformed or refused; the message names it
     * @throws IllegalArgumentException if a key has no Hugging Face counterpart, or rank files
     *     disagree
     */
    public static Map<String, NDArray> readAsHuggingFace(Path dir, int degree, NDManager manager)
            throws IOException {
        try (NDManager scratch = manager.newSubManager()) {
            Map<String, NDArray> paddle = readPaddle(dir, degree, scratch);
            Map<String, NDArray> out = new LinkedHashMap<>();
            for (Map.Entry<String, NDArray> e : paddle.entrySet()) {
                NDArray value = PaddleLoRAKeys.toHuggingFace(e.getKey(), e.getValue());
                value.attach(manager);
                out.put(PaddleLoRAKeys.huggingFaceKey(e.getKey()), value);
            }
            return out;
        }
    }

    /**
     * Writes the adapter's weights as Hugging Face's {@code adapter_model.safetensors} into a new
     * temporary directory, which closing removes; for a directory that is not PaddleNLP's, the
     * directory itself, which closing leaves.
     *
     * @param dir an adapter directory
     * @param degree the {@code tensor_parallel_degree} of its config
     * @param manager a manager for the arrays while converting
     * @return the directory to read the weights from
     * @throws IOException as {@link #readAsHuggingFace}
     */
    public static StagedWeights stage(Path dir, int degree, NDManager manager)
            throws IOException {
        return StagedWeights.stage(
                dir, isPaddleAdapter(dir), manager, m -> readAsHuggingFace(dir, degree, m));
    }

    private static Map<String, NDArray> readPaddle(Path dir, int degree, NDManager manager)
            throws IOException {
        if (Files.isRegularFile(dir.resolve(SAFE_WEIGHTS_FILE + ".index.json"))
                || Files.isRegularFile(dir.resolve(SAFE_WEIGHTS_FILE))) {
            return PaddleStateFiles.readSafetensorsSet(dir, SAFE_WEIGHTS_FILE, manager);
        }
        return PaddleStateFiles.readWholeOrRanks(
                dir, WEIGHTS_FILE, degree, PaddleLoRAKeys::splitAxis, manager);
    }
}
