package org.peft4j.core.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/** File naming and the single-process paths of {@link ShardedCheckpoint}. */
class ShardedCheckpointTest {

    @Test
    void shardNamesShowRankAndDegree() {
        assertEquals(
                "adapter_model.tp01-of-02.safetensors",
                ShardedCheckpoint.shardName("adapter_model.safetensors", 1, 2));
        assertEquals("weights.tp00-of-08", ShardedCheckpoint.shardName("weights", 0, 8));
    }

    @Test
    void findsTheDegreesOfShardSets(@TempDir Path dir) throws Exception {
        for (String name :
                List.of(
                        "adapter_model.tp00-of-02.safetensors",
                        "adapter_model.tp01-of-02.safetensors",
                        "adapter_model.tp03-of-04.safetensors",
                        "adapter_model.safetensors.tmp",
                        "other.tp00-of-16.safetensors")) {
            Files.writeString(dir.resolve(name), "");
        }
        assertEquals(
                new TreeSet<>(List.of(2, 4)),
                ShardedCheckpoint.shardDegrees(dir, "adapter_model.safetensors"));
    }

    @Test
    void singleProcessSaveAndLoadRoundTrip(@TempDir Path dir) throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray a = manager.arange(6f).reshape(2, 3);
            boolean[] companion = new boolean[1];
            ShardedCheckpoint.save(
                    dir,
                    "w.safetensors",
                    Map.of("a", a),
                    Map.of(),
                    false,
                    () -> companion[0] = true);
            assertTrue(companion[0]);
            Map<String, NDArray> loaded =
                    ShardedCheckpoint.load(
                            dir,
                            "w.safetensors",
                            Map.of("a", new Shape(2, 3)),
                            Map.of(),
                            manager,
                            "the config");
            assertSameBits(
                    a,
                    loaded.get("a"),
                    "saved and loaded: the file holds the tensor's bytes, read back unchanged");
            IllegalArgumentException misfit =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    ShardedCheckpoint.load(
                                            dir,
                                            "w.safetensors",
                                            Map.of("a", new Shape(3, 2)),
                                            Map.of(),
                                            manager,
                                            "the config"));
            assertTrue(misfit.getMessage().contains("key a has shape (2, 3)"), misfit.getMessage());
            assertTrue(misfit.getMessage().contains("the config"), misfit.getMessage());
        }
    }

    @Test
    void shardsAloneDoNotLoadIntoASingleProcessModel(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("w.tp00-of-02.safetensors"), "");
        Files.writeString(dir.resolve("w.tp01-of-02.safetensors"), "");
        try (NDManager manager = NDManager.newBaseManager()) {
            IllegalArgumentException refused =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    ShardedCheckpoint.load(
                                            dir,
                                            "w.safetensors",
                                            Map.of("a", new Shape(2)),
                                            Map.of(),
                                            manager,
                                            "x"));
            assertTrue(refused.getMessage().contains("[2]"), refused.getMessage());
            assertTrue(refused.getMessage().contains("degree is 1"), refused.getMessage());
        }
        Path empty = Files.createDirectory(dir.resolve("empty"));
        try (NDManager manager = NDManager.newBaseManager()) {
            assertThrows(
                    NoSuchFileException.class,
                    () ->
                            ShardedCheckpoint.load(
                                    empty,
                                    "w.safetensors",
                                    Map.of("a", new Shape(2)),
                                    Map.of(),
                                    manager,
                                    "x"));
        }
    }
}
