package org.peft4j.lora.paddle;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.paddle.PickleFormatException;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Every PaddleNLP form of one adapter reads as the Hugging Face adapter it is. The files are
 * written by {@code src/test/python/write_paddle_adapters.py} following Paddle's and PaddleNLP's
 * sources; {@code hf/} is the same adapter transposed by numpy and saved as Hugging Face PEFT
 * saves it, so the comparison is against an independent computation. The values are bfloat16-exact,
 * so every form, bfloat16 ones included, must give the same float32 bits.
 */
class PaddleLoRAFilesTest {

    @TempDir Path temp;

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    static Path fixture(String name) {
        try {
            return Path.of(PaddleLoRAFilesTest.class.getResource("/paddle/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private Map<String, float[]> reference() throws IOException {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (SafetensorsReader reader =
                SafetensorsReader.open(fixture("hf").resolve("adapter_model.safetensors"))) {
            for (String key : reader.getTensors().keySet()) {
                out.put(key, reader.read(key, manager).toFloatArray());
            }
        }
        return out;
    }

    @Test
    void everyPaddleFormReadsAsTheHuggingFaceAdapterBitForBit() throws IOException {
        Map<String, float[]> expected = reference();
        String[][] forms = {
            {"lora", "1"}, {"lora_protocol2", "1"}, {"lora_tp2", "2"},
            {"lora_bf16", "1"}, {"lora_safetensors", "1"},
        };
        for (String[] form : forms) {
            Path dir = fixture(form[0]);
            assertTrue(PaddleLoRAFiles.isPaddleAdapter(dir), form[0]);
            Map<String, NDArray> read =
                    PaddleLoRAFiles.readAsHuggingFace(dir, Integer.parseInt(form[1]), manager);
            assertEquals(expected.keySet(), read.keySet(), form[0]);
            for (Map.Entry<String, float[]> e : expected.entrySet()) {
                float[] actual = read.get(e.getKey()).toFloatArray();
                assertEquals(e.getValue().length, actual.length, form[0] + " " + e.getKey());
                for (int i = 0; i < actual.length; i++) {
                    assertEquals(
                            Float.floatToRawIntBits(e.getValue()[i]),
                            Float.floatToRawIntBits(actual[i]),
                            form[0] + " " + e.getKey() + " [" + i + "]");
                }
            }
        }
        assertFalse(PaddleLoRAFiles.isPaddleAdapter(fixture("hf")));
    }

    @Test
    void loraMatricesAreTransposedAndRenamed() {
        NDArray a = manager.arange(6f).reshape(3, 2); // Paddle's [in 3, r 2]
        NDArray hf = PaddleLoRAKeys.toHuggingFace("qwen2.layers.1.mlp.up_proj.lora_A", a);
        assertArrayEquals(new long[] {2, 3}, hf.getShape().getShape());
        assertArrayEquals(new float[] {0, 2, 4, 1, 3, 5}, hf.toFloatArray());
        assertEquals(
                "base_model.model.model.layers.1.mlp.up_proj.lora_A.weight",
                PaddleLoRAKeys.huggingFaceKey("qwen2.layers.1.mlp.up_proj.lora_A"));
        assertEquals(
                "base_model.model.lm_head.lora_B.weight",
                PaddleLoRAKeys.huggingFaceKey("lm_head.lora_B"));
        assertEquals(
                "base_model.model.model.layers.0.self_attn.q_proj.bias",
                PaddleLoRAKeys.huggingFaceKey("llama.layers.0.self_attn.q_proj.bias"));
        IllegalArgumentException fused =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                PaddleLoRAKeys.huggingFaceKey(
                                        "llama.layers.0.self_attn.qkv_proj.lora_A"));
        assertTrue(fused.getMessage().contains("fuse_attention_qkv"), fused.getMessage());
    }

    private Path copy(String name) throws IOException {
        Path target = Files.createDirectories(temp.resolve(name));
        try (Stream<Path> files = Files.list(fixture(name))) {
            for (Path file : files.toList()) {
                Files.copy(file, target.resolve(file.getFileName()));
            }
        }
        return target;
    }

    /** Reading a copy of a fixture without one of its files fails naming that file. */
    private String missing(String fixture, String file, int degree) throws IOException {
        Path dir = copy(fixture);
        Files.delete(dir.resolve(file));
        NoSuchFileException e =
                assertThrows(
                        NoSuchFileException.class,
                        () -> PaddleLoRAFiles.readAsHuggingFace(dir, degree, manager));
        assertTrue(e.getMessage().contains(file), e.getMessage());
        return e.getMessage();
    }

    @Test
    void aMissingRankFileFailsNamingIt() throws IOException {
        String message = missing("lora_tp2", "lora_model_state.tp01.pdparams", 2);
        assertTrue(message.contains("every rank"), message);
    }

    @Test
    void aTruncatedFileFailsNamingIt() throws IOException {
        Path dir = copy("lora");
        Path file = dir.resolve("lora_model_state.pdparams");
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length / 2));
        PickleFormatException e =
                assertThrows(
                        PickleFormatException.class,
                        () -> PaddleLoRAFiles.readAsHuggingFace(dir, 1, manager));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
    }

    @Test
    void anIndexNamingAMissingFileFailsNamingIt() throws IOException {
        String message = missing("lora_safetensors", "peft_model-00001-of-00001.safetensors", 1);
        assertTrue(message.contains("index.json lists it"), message);
    }
}
