package org.peft4j.prefix;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.floats;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.PeftModel;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.io.SafetensorsWriter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

class PrefixCheckpointTest {

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

    private float[] logits(PrefixModelForCausalLM model) {
        NDArray ids = manager.create(new long[] {4, 5, 6, 7}).reshape(1, 4);
        return model.forward(new ParameterStore(manager, false), new NDList(ids), false)
                .head()
                .toFloatArray();
    }

    /**
     * Asserts that a loaded prefix model holds the saved one's trainable parameters bit for bit
     * (copied through the file), then that its logits agree: the same math on the same values,
     * but a second evaluation is not bitwise guaranteed (MKL's path depends on the buffers), so to
     * rounding.
     */
    private void assertLoadedEqualsSaved(
            PrefixModelForCausalLM saved, float[] expected, PrefixModelForCausalLM loaded) {
        Map<String, float[]> a = parameters(saved);
        Map<String, float[]> b = parameters(loaded);
        assertEquals(a.keySet(), b.keySet());
        a.forEach(
                (name, values) ->
                        assertSameBits(values, b.get(name), name + ": saved and loaded, a copy"));
        assertRoundingClose(
                expected, logits(loaded), PrefixModelTest.ROUNDING, "the loaded model's logits");
    }

    private static Map<String, float[]> parameters(PrefixModelForCausalLM model) {
        Map<String, float[]> values = new java.util.LinkedHashMap<>();
        model.getTrainableParameters().forEach((k, p) -> values.put(k, floats(p.getArray())));
        return values;
    }

    private PrefixModelForCausalLM trained(TinyDecoder base, PrefixConfig config) {
        PrefixModelForCausalLM model = new PrefixModelForCausalLM(base, config);
        NDArray table = model.getPrefixEncoder().getEmbedding().getArray();
        table.addi(manager.randomNormal(table.getShape()));
        return model;
    }

    @Test
    void savesHuggingFaceAndSeedFilesAndLoadsThroughEither() throws IOException {
        PrefixModelForCausalLM model =
                trained(
                        TinyDecoder.create(manager, 1),
                        PrefixModelTest.config(TinyDecoder.create(manager, 1), 5).build());
        float[] expected = logits(model);
        model.savePretrained(dir);

        JsonNode hf = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
        assertEquals("PREFIX_TUNING", hf.get("peft_type").asText());
        assertEquals(5, hf.get("num_virtual_tokens").asInt());
        assertEquals(2 * 4, hf.get("token_dim").asInt(), "kv heads x head dim, as PEFT for GQA");
        assertEquals(2, hf.get("num_attention_heads").asInt());
        assertEquals(2, hf.get("num_layers").asInt());
        assertFalse(hf.get("prefix_projection").asBoolean());
        JsonNode seed = new ObjectMapper().readTree(dir.resolve("prefix_config.json").toFile());
        assertEquals(5, seed.get("num_prefix_tokens").asInt());
        assertEquals(4, seed.get("num_attention_heads").asInt());
        assertEquals(2, seed.get("multi_query_group_num").asInt());
        try (SafetensorsReader reader =
                SafetensorsReader.open(dir.resolve("adapter_model.safetensors"))) {
            assertEquals(
                    Map.of("prompt_embeddings", new Shape(5, 2 * 2 * 2 * 4)),
                    Map.of(
                            "prompt_embeddings",
                            reader.getTensors().get("prompt_embeddings").shape()));
            assertEquals(1, reader.getTensors().size());
        }

        assertLoadedEqualsSaved(
                model,
                expected,
                PrefixModelForCausalLM.fromPretrained(TinyDecoder.create(manager, 1), dir));
        Path seedFile = dir.resolve("prefix_config.json");
        Path moved = dir.resolveSibling("prefix_config.json.bak");
        Files.move(seedFile, moved);
        PeftModel viaHf = PeftModel.fromPretrained(TinyDecoder.create(manager, 1), dir);
        assertTrue(viaHf instanceof PrefixModelForCausalLM);
        assertLoadedEqualsSaved(model, expected, (PrefixModelForCausalLM) viaHf);
        Files.move(moved, seedFile);
        Files.delete(dir.resolve("adapter_config.json"));
        assertLoadedEqualsSaved(
                model,
                expected,
                (PrefixModelForCausalLM)
                        PeftModel.fromPretrained(TinyDecoder.create(manager, 1), dir));
    }

    @Test
    void aProjectionIsSavedSoThatTrainingCanResume() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model =
                trained(base, PrefixModelTest.config(base, 3).optPrefixProjection(10).build());
        float[] expected = logits(model);
        model.savePretrained(dir);
        assertTrue(Files.isRegularFile(dir.resolve("prefix_encoder.safetensors")));
        PrefixModelForCausalLM resumed =
                PrefixModelForCausalLM.fromPretrained(TinyDecoder.create(manager, 1), dir);
        assertTrue(resumed.getPrefixEncoder().hasProjection());
        assertEquals(model.countTrainableParameters(), resumed.countTrainableParameters());
        assertLoadedEqualsSaved(model, expected, resumed);

        Files.delete(dir.resolve("prefix_encoder.safetensors"));
        PrefixModelForCausalLM table =
                PrefixModelForCausalLM.fromPretrained(TinyDecoder.create(manager, 1), dir);
        assertFalse(
                table.getPrefixEncoder().hasProjection(), "the projection's output became a table");
        // the table holds the projection's output computed once at saving; the model with the
        // projection computes it again in each pass: the same math, to rounding
        assertRoundingClose(
                expected,
                logits(table),
                PrefixModelTest.ROUNDING,
                "the projection's output as a table against the projection");
    }

    @Test
    void aPrefixForAnotherModelIsRefusedWithTheMismatch() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        trained(base, PrefixModelTest.config(base, 5).build()).savePretrained(dir);
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                PrefixModelForCausalLM.fromPretrained(
                                        TinyDecoder.create(manager, 1, 3), dir));
        assertTrue(
                e.getMessage().contains("num_hidden_layers is 2 in the config, 3 in the model"),
                e.getMessage());
    }

    @Test
    void aMisshapenPrefixIsNamed() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        trained(base, PrefixModelTest.config(base, 5).build()).savePretrained(dir);
        SafetensorsWriter.write(
                dir.resolve("adapter_model.safetensors"),
                Map.of(
                        "prompt_embeddings",
                        manager.zeros(new Shape(5, 31)),
                        "extra",
                        manager.zeros(new Shape(1))));
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                PrefixModelForCausalLM.fromPretrained(
                                        TinyDecoder.create(manager, 1), dir));
        assertTrue(e.getMessage().contains("prompt_embeddings has shape (5, 31)"), e.getMessage());
        assertTrue(e.getMessage().contains("(5, 32)"), e.getMessage());
        assertTrue(e.getMessage().contains("unexpected key extra"), e.getMessage());
    }

    @Test
    void aHuggingFaceConfigWrittenWithoutGroupedQuerySupportIsRefused() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        // PEFT before #1901 wrote the model's query heads and hidden size for GQA models
        Files.writeString(
                dir.resolve("adapter_config.json"),
                "{\"peft_type\": \"PREFIX_TUNING\", \"task_type\": \"CAUSAL_LM\","
                    + " \"num_virtual_tokens\": 5, \"token_dim\": 16, \"num_attention_heads\": 4,"
                    + " \"num_layers\": 2, \"num_transformer_submodules\": 1,"
                    + " \"prefix_projection\": false, \"encoder_hidden_size\": 16}");
        SafetensorsWriter.write(
                dir.resolve("adapter_model.safetensors"),
                Map.of("prompt_embeddings", manager.zeros(new Shape(5, 2 * 2 * 16))));
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> PrefixModelForCausalLM.fromPretrained(base, dir));
        assertTrue(
                e.getMessage().contains("num_key_value_heads is 4 in the config, 2 in the model"),
                e.getMessage());
    }
}
