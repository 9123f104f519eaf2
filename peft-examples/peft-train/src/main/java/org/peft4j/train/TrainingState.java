package org.peft4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.peft4j.core.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Where a run stands, as a checkpoint's {@code trainer_state.json} records it: the steps done, the
 * next example's position (epoch and index in that epoch's order), the tokens seen, and the
 * settings a resumed run must share.
 *
 * @param step steps done
 * @param epoch the epoch of the next example
 * @param index the next example's position in the epoch's order
 * @param tokens tokens trained on so far
 * @param totalSteps the run's length
 * @param seed the run's seed
 * @param examplesPerStep batch size times accumulation
 */
public record TrainingState(
        int step,
        int epoch,
        int index,
        long tokens,
        int totalSteps,
        long seed,
        int examplesPerStep) {

    /** The file name in a checkpoint. */
    public static final String FILE = "trainer_state.json";

    /**
     * Writes the state atomically.
     *
     * @param file the file
     * @throws IOException if writing fails
     */
    public void write(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode node = json.createObjectNode();
        node.put("step", step);
        node.put("epoch", epoch);
        node.put("index", index);
        node.put("tokens", tokens);
        node.put("total_steps", totalSteps);
        node.put("seed", seed);
        node.put("examples_per_step", examplesPerStep);
        AtomicFiles.writeString(
                file, json.writerWithDefaultPrettyPrinter().writeValueAsString(node));
    }

    /**
     * Reads a state.
     *
     * @param file the file
     * @return the state
     * @throws IOException if the file cannot be read or lacks a field (named)
     */
    public static TrainingState read(Path file) throws IOException {
        JsonNode node = new ObjectMapper().readTree(file.toFile());
        return new TrainingState(
                field(file, node, "step").asInt(),
                field(file, node, "epoch").asInt(),
                field(file, node, "index").asInt(),
                field(file, node, "tokens").asLong(),
                field(file, node, "total_steps").asInt(),
                field(file, node, "seed").asLong(),
                field(file, node, "examples_per_step").asInt());
    }

    private static JsonNode field(Path file, JsonNode node, String name) throws IOException {
        JsonNode value = node == null ? null : node.get(name);
        if (value == null || !value.isNumber()) {
            throw new IOException(file + ": field \"" + name + "\" is missing or not a number");
        }
        return value;
    }
}
