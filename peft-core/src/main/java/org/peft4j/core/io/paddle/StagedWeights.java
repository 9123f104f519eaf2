package org.peft4j.core.io.paddle;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

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

    /** Reads a PaddleNLP directory's weights under Hugging Face's keys and layout. */
    @FunctionalInterface
    public interface Converter {

        /**
         * Reads the weights.
         *
         * @param scratch the manager of the arrays, closed once they are written
         * @return the weights by Hugging Face key
         * @throws IOException if a file cannot be read
         */
        Map<String, NDArray> read(NDManager scratch) throws IOException;
    }

    /**
     * Stages a directory: a PaddleNLP one converted into {@code adapter_model.safetensors} in a new
     * temporary directory, any other one as it is.
     *
     * @param dir the adapter directory
     * @param paddle whether it holds PaddleNLP's weights (and no Hugging Face ones)
     * @param manager the manager under which the conversion's scratch arrays live
     * @param converter reads the weights when {@code paddle}
     * @return the staging; close it once the weights are read
     * @throws IOException if reading or writing fails; no temporary directory is left then
     */
    public static StagedWeights stage(
            Path dir, boolean paddle, NDManager manager, Converter converter) throws IOException {
        if (!paddle) {
            return new StagedWeights(dir, false);
        }
        StagedWeights staged =
                new StagedWeights(Files.createTempDirectory("peft4j-paddle-"), true);
        try (NDManager scratch = manager.newSubManager()) {
            SafetensorsWriter.write(
                    staged.dir.resolve(PeftModel.WEIGHTS_FILE), converter.read(scratch));
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
