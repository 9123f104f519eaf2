package org.peft4j.core.io.paddle;

import ai.djl.ndarray.NDArray;

import org.peft4j.core.PeftModel;
import org.peft4j.core.io.SafetensorsWriter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A directory holding an adapter's weights in Hugging Face's form: a temporary one that a
 * PaddleNLP adapter was converted into, which closing removes, or the adapter's own directory,
 * which closing leaves.
 */
public final class StagedWeights implements AutoCloseable {

    private final Path dir;
    private final boolean temporary;

    private StagedWeights(Path dir, boolean temporary) {
        this.dir = dir;
        this.temporary = temporary;
    }

    /**
     * Wraps a directory that is read as it is.
     *
     * @param dir the adapter directory
     * @return a staging that closing leaves alone
     */
    public static StagedWeights asIs(Path dir) {
        return new StagedWeights(dir, false);
    }

    /**
     * Writes converted weights as {@code adapter_model.safetensors} into a new temporary
     * directory.
     *
     * @param tensors the weights under Hugging Face's keys
     * @return a staging that closing removes
     * @throws IOException if the directory or the file cannot be written; nothing is left then
     */
    public static StagedWeights holding(Map<String, NDArray> tensors) throws IOException {
        StagedWeights staged =
                new StagedWeights(Files.createTempDirectory("peft4j-paddle-"), true);
        try {
            SafetensorsWriter.write(staged.dir.resolve(PeftModel.WEIGHTS_FILE), tensors);
            return staged;
        } catch (IOException | RuntimeException e) {
            staged.close();
            throw e;
        }
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
