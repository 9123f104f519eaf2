package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsFormatException;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.SafetensorsWriter;
import org.peft4j.core.testing.Fixtures;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** Broken checkpoints end in errors that name the file, key or tensor. */
class LlamaCheckpointErrorsTest {

    @TempDir Path dir;

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private Path copyOfFixture() throws IOException {
        Path source = Fixtures.stories260K();
        for (String name : new String[] {"config.json", "model.safetensors", "tokenizer.bin"}) {
            Files.copy(source.resolve(name), dir.resolve(name));
        }
        return dir;
    }

    private void editConfig(String from, String to) throws IOException {
        Path config = dir.resolve("config.json");
        String text = Files.readString(config);
        assertTrue(text.contains(from), "fixture config holds " + from);
        Files.writeString(config, text.replace(from, to));
    }

    private <T extends Throwable> T assertFails(Class<T> type, String... fragments) {
        T e = assertThrows(type, () -> LlamaForCausalLM.fromPretrained(dir, manager));
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), e.getMessage());
        }
        return e;
    }

    @Test
    void aMissingConfigKeyIsNamed() throws IOException {
        copyOfFixture();
        editConfig("\"hidden_size\": 64,", "");
        assertFails(IllegalArgumentException.class, "config.json", "\"hidden_size\"", "missing");
    }

    @Test
    void otherModelTypesAndUnimplementedRopeScalingAreRefused() throws IOException {
        copyOfFixture();
        editConfig("\"model_type\": \"llama\"", "\"model_type\": \"gemma2\"");
        assertFails(IllegalArgumentException.class, "model_type", "gemma2", "supported: ");
        editConfig(
                "\"model_type\": \"gemma2\"",
                "\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\":"
                        + " 4}");
        assertFails(IllegalArgumentException.class, "rope_scaling", "yarn");
    }

    @Test
    void aTensorThatDisagreesWithTheConfigIsNamedWithBothShapes() throws IOException {
        copyOfFixture();
        editConfig("\"intermediate_size\": 172", "\"intermediate_size\": 100");
        assertFails(
                IllegalArgumentException.class,
                "model.layers.0.mlp.gate_proj.weight",
                "(172, 64)",
                "(100, 64)");
    }

    @Test
    void aMissingTensorIsNamed() throws IOException {
        copyOfFixture();
        Path file = dir.resolve("model.safetensors");
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            for (String name : reader.getTensors().keySet()) {
                tensors.put(name, reader.read(name, manager));
            }
        }
        tensors.remove("model.layers.2.self_attn.v_proj.weight");
        SafetensorsWriter.write(file, tensors);
        assertFails(IOException.class, "missing tensor model.layers.2.self_attn.v_proj.weight");
    }

    @Test
    void truncatedFilesAreNamed() throws IOException {
        copyOfFixture();
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length / 2));
        assertFails(SafetensorsFormatException.class, file.toString(), "truncated");

        Path bin = dir.resolve("stories260K.bin");
        byte[] llama2c = Files.readAllBytes(Fixtures.stories260K().resolve("stories260K.bin"));
        Files.write(bin, Arrays.copyOf(llama2c, llama2c.length - 1000));
        IOException e =
                assertThrows(
                        IOException.class, () -> LlamaForCausalLM.fromPretrained(bin, manager));
        assertTrue(e.getMessage().contains(bin.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void aMissingShardIsNamed() throws IOException {
        Path source = Fixtures.root().resolve("stories260K-bf16-sharded");
        for (String name :
                new String[] {
                    "config.json",
                    "model.safetensors.index.json",
                    "model-00001-of-00002.safetensors"
                }) {
            Files.copy(source.resolve(name), dir.resolve(name));
        }
        assertFails(NoSuchFileException.class, "model-00002-of-00002.safetensors");
    }

    @Test
    void aDirectoryWithoutWeightsSaysWhatItHolds() throws IOException {
        Files.copy(Fixtures.stories260K().resolve("config.json"), dir.resolve("config.json"));
        assertFails(NoSuchFileException.class, "model.safetensors", "config.json");
    }
}
