package org.peft4j.lora.paddle;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.peft4j.core.PeftModel;
import org.peft4j.core.io.SafetensorsWriter;
import org.peft4j.core.io.paddle.PaddleStateFiles;
import org.peft4j.core.parallel.ShardedCheckpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

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
        if (!Files.isDirectory(dir)
                || Files.isRegularFile(dir.resolve(PeftModel.WEIGHTS_FILE))
                || !ShardedCheckpoint.shardDegrees(dir, PeftModel.WEIGHTS_FILE).isEmpty()) {
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
    public static Staged stage(Path dir, int degree, NDManager manager) throws IOException {
        if (!isPaddleAdapter(dir)) {
            return new Staged(dir, false);
        }
        Path temp = Files.createTempDirectory("peft4j-paddle-");
        Staged staged = new Staged(temp, true);
        try (NDManager scratch = manager.newSubManager()) {
            SafetensorsWriter.write(
                    temp.resolve(PeftModel.WEIGHTS_FILE), readAsHuggingFace(dir, degree, scratch));
            return staged;
        } catch (IOException | RuntimeException e) {
            staged.close();
            throw e;
        }
    }

    private static Map<String, NDArray> readPaddle(Path dir, int degree, NDManager manager)
            throws IOException {
        if (Files.isRegularFile(dir.resolve(SAFE_WEIGHTS_FILE + ".index.json"))
                || Files.isRegularFile(dir.resolve(SAFE_WEIGHTS_FILE))) {
            return PaddleStateFiles.readSafetensorsSet(dir, SAFE_WEIGHTS_FILE, manager);
        }
        int present = PaddleStateFiles.countShards(dir, WEIGHTS_FILE);
        Path merged = dir.resolve(WEIGHTS_FILE);
        if (present == 0 && Files.isRegularFile(merged)) {
            return PaddleStateFiles.read(merged, manager);
        }
        if (present == 0) {
            throw new NoSuchFileException(
                    merged.toString(),
                    null,
                    "missing; the directory holds " + PaddleStateFiles.list(dir));
        }
        int ranks = degree > 1 ? degree : present;
        List<Map<String, NDArray>> shards = new ArrayList<>();
        for (int rank = 0; rank < ranks; rank++) {
            Path shard = dir.resolve(PaddleStateFiles.shardName(WEIGHTS_FILE, rank));
            if (!Files.isRegularFile(shard)) {
                throw new NoSuchFileException(
                        shard.toString(),
                        null,
                        "missing: the adapter was saved by "
                                + ranks
                                + " ranks (tensor_parallel_degree in lora_config.json), one file"
                                + " each; copy every rank's file");
            }
            shards.add(PaddleStateFiles.read(shard, manager));
        }
        return join(dir, shards);
    }

    /** Joins rank files as PaddleNLP's merge does: split keys concatenated, others rank 0's. */
    private static Map<String, NDArray> join(Path dir, List<Map<String, NDArray>> shards) {
        Map<String, NDArray> first = shards.get(0);
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : first.entrySet()) {
            String key = e.getKey();
            int axis = PaddleLoRAKeys.splitAxis(key);
            List<NDArray> parts = new ArrayList<>();
            for (int rank = 0; rank < shards.size(); rank++) {
                NDArray part = shards.get(rank).get(key);
                Shape shape = e.getValue().getShape();
                if (part == null || !part.getShape().equals(shape)) {
                    throw new IllegalArgumentException(
                        dir.resolve(PaddleStateFiles.shardName(WEIGHTS_FILE, rank))
                                + ": key "
                                + key
                                + (part == null ? " is missing" : " has shape " + part.getShape())
                                + " where rank 0's file has "
                                + shape
                                + "; the rank files are of different saves");
                }
                parts.add(part);
            }
            out.put(key, axis < 0 ? e.getValue() : PaddleStateFiles.concat(parts, axis));
        }
        for (int rank = 1; rank < shards.size(); rank++) {
            for (String key : shards.get(rank).keySet()) {
                if (!first.containsKey(key)) {
                    throw new IllegalArgumentException(
                            dir.resolve(PaddleStateFiles.shardName(WEIGHTS_FILE, rank))
                                    + ": key "
                                    + key
                                    + " is not in rank 0's file; the rank files are of different"
                                    + " saves");
                }
            }
        }
        return out;
    }

    /** A directory holding Hugging Face weights, temporary when converted. */
    public static final class Staged implements AutoCloseable {

        private final Path dir;
        private final boolean temporary;

        Staged(Path dir, boolean temporary) {
            this.dir = dir;
            this.temporary = temporary;
        }

        /**
         * Returns the directory that holds {@code adapter_model.safetensors}.
         *
         * @return the directory
         */
        public Path getDir() {
            return dir;
        }

        /** Removes the directory when it is a temporary one. */
        @Override
        public void close() throws IOException {
            if (!temporary) {
                return;
            }
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }
}
