package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.SafetensorsWriter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/** The optimizer file: a round trip, and files that must be refused before anything changes. */
class AdamWTest {

    @TempDir Path dir;
    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private AdamW optimizer(float value) {
        Parameter weight = Parameter.builder().setName("w").setType(Parameter.Type.WEIGHT).build();
        weight.setArray(manager.full(new Shape(2, 3), value));
        weight.getArray().setRequiresGradient(true);
        return new AdamW(Map.of("w", weight), 0.9, 0.999, 1e-8, 0);
    }

    @Test
    void aStateLoadsAndSavesBackUnchanged() throws IOException {
        Path file = dir.resolve("optimizer.safetensors");
        SafetensorsWriter.write(
                file,
                Map.of(
                        "exp_avg.w", manager.full(new Shape(2, 3), 7f),
                        "exp_avg_sq.w", manager.full(new Shape(2, 3), 9f)),
                Map.of("step", "3"));
        AdamW optimizer = optimizer(1f);
        optimizer.load(file);
        assertEquals(3, optimizer.getSteps());
        assertMoments(optimizer, 7f, 9f);
    }

    @Test
    void aFileWithoutAStepIsRefusedBeforeAnyMomentChanges() throws IOException {
        Path file = dir.resolve("moments.safetensors");
        NDArray moments = manager.full(new Shape(2, 3), 7f);
        SafetensorsWriter.write(file, Map.of("exp_avg.w", moments, "exp_avg_sq.w", moments));
        AdamW optimizer = optimizer(1f);

        IOException e = assertThrows(IOException.class, () -> optimizer.load(file));
        assertTrue(e.getMessage().contains("step"), e.getMessage());
        assertEquals(0, optimizer.getSteps());
        assertMoments(optimizer, 0f, 0f);
    }

    /** Saves the optimizer and reads its moments back from the file. */
    private void assertMoments(AdamW optimizer, float first, float second) throws IOException {
        Path saved = dir.resolve("saved.safetensors");
        optimizer.save(saved);
        try (SafetensorsReader reader = SafetensorsReader.open(saved)) {
            float[] m = reader.read("exp_avg.w", manager).toFloatArray();
            float[] v = reader.read("exp_avg_sq.w", manager).toFloatArray();
            float[] firsts = new float[6];
            float[] seconds = new float[6];
            java.util.Arrays.fill(firsts, first);
            java.util.Arrays.fill(seconds, second);
            assertSameBits(firsts, m, "exp_avg: loaded (or zero) and saved, copies");
            assertSameBits(seconds, v, "exp_avg_sq: loaded (or zero) and saved, copies");
        }
    }
}
