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
import org.peft4j.core.testing.ConfigFields;
import org.peft4j.core.testing.HfTargetRules;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

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

    @Test
    void eachConfigFileHoldsOnlyItsToolsFields() throws IOException {
        for (boolean projection : new boolean[] {false, true}) {
            TinyDecoder base = TinyDecoder.create(manager, 1);
            PrefixConfig.Builder config = PrefixModelTest.config(base, 5);
            if (projection) {
                config.optPrefixProjection(10);
            }
            Path out = dir.resolve("projection-" + projection);
            trained(base, config.optPrefixDropout(0.1).build()).savePretrained(out);
            JsonNode hf = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
            JsonNode seed = new ObjectMapper().readTree(out.resolve("prefix_config.json").toFile());
            Set<String> extraHf = HfTargetRules.fields(hf);
            extraHf.removeAll(ConfigFields.HF_PREFIX_TUNING_CONFIG);
            assertEquals(Set.of(), extraHf, "fields HF's PrefixTuningConfig does not define");
            Set<String> extraSeed = HfTargetRules.fields(seed);
            extraSeed.removeAll(ConfigFields.PADDLE_PREFIX_CONFIG);
            assertEquals(Set.of(), extraSeed, "fields PaddleNLP's PrefixConfig does not define");
            assertEquals(0.1, seed.get("prefix_dropout").asDouble());
            assertEquals("float32", seed.get("dtype").asText());
            assertEquals(projection ? 10 : 0, hf.get("encoder_hidden_size").asInt());
            assertEquals(hf.get("encoder_hidden_size"), seed.get("prefix_projection_hidden_size"));
            assertEquals(
                    0.1,
                    PrefixConfig.fromPretrained(out).getPrefixDropout(),
                    "read from prefix_config.json beside adapter_config.json");
        }
    }

    @Test
    void filesThatDisagreeAreRefusedNamingBothValues() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        trained(base, PrefixModelTest.config(base, 8).build()).savePretrained(dir);
        Path seed = dir.resolve("prefix_config.json");
        String good = Files.readString(seed);
        Files.writeString(seed, good.replace("\"num_prefix_tokens\" : 8", "\"num_prefix_tokens\" : 16"));
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> PrefixModelForCausalLM.fromPretrained(TinyDecoder.create(manager, 1), dir));
        assertEquals(
                dir.resolve("adapter_config.json")
                        + " and "
                        + seed
                        + " disagree on the number of prefix tokens: \"num_virtual_tokens\": 8 in"
                        + " the first, \"num_prefix_tokens\": 16 in the second. The two files"
                        + " describe one adapter (Hugging Face PEFT reads the first, PaddleNLP the"
                        + " second, peft4j writes both on every save), so one of them was edited or"
                        + " left from another save: correct the wrong one, or delete it (either"
                        + " file alone loads)",
                e.getMessage());
        Files.writeString(seed, good.replace("\"multi_query_group_num\" : 2", "\"multi_query_group_num\" : 4"));
        IllegalArgumentException heads =
                assertThrows(IllegalArgumentException.class, () -> PrefixConfig.fromPretrained(dir));
        assertTrue(heads.getMessage().contains("key/value heads"), heads.getMessage());
        assertTrue(heads.getMessage().contains("\"multi_query_group_num\": 4"), heads.getMessage());
    }

    @Test
    void bytesThatAreNotUtf8AreRefusedInEitherFile() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        trained(base, PrefixModelTest.config(base, 5).build()).savePretrained(dir);
        for (String name : List.of("adapter_config.json", "prefix_config.json")) {
            Path file = dir.resolve(name);
            byte[] good = Files.readAllBytes(file);
            int at = new String(good, StandardCharsets.UTF_8).indexOf("dtype\"");
            at = at < 0 ? new String(good, StandardCharsets.UTF_8).indexOf("peft_type") : at;
            byte[] bad = good.clone();
            bad[at] = (byte) 0xFF;
            Files.write(file, bad);
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> PrefixConfig.fromPretrained(dir));
            assertTrue(e.getMessage().startsWith(file + ": not UTF-8: byte offset " + at), e.getMessage());
            assertTrue(e.getMessage().contains("0xFF"), e.getMessage());
            Files.write(file, good);
        }
    }

    @Test
    void readsPrefixesOfThePreviousPeft4jVersion() throws IOException {
        TinyDecoder base = TinyDecoder.create(manager, 1);
        PrefixModelForCausalLM model = trained(base, PrefixModelTest.config(base, 5).build());
        float[] expected = logits(model);
        model.savePretrained(dir);
        // both files as peft4j 0.1.0 wrote them: PaddleNLP's fields inside adapter_config.json
        Files.writeString(
                dir.resolve("adapter_config.json"),
                "{\n  \"peft_type\" : \"PREFIX_TUNING\",\n  \"task_type\" : null,\n"
                        + "  \"base_model_name_or_path\" : null,\n  \"inference_mode\" : true,\n"
                        + "  \"num_virtual_tokens\" : 5,\n  \"token_dim\" : 8,\n"
                        + "  \"num_transformer_submodules\" : 1,\n  \"num_attention_heads\" : 2,\n"
                        + "  \"num_layers\" : 2,\n  \"encoder_hidden_size\" : 0,\n"
                        + "  \"prefix_projection\" : false,\n  \"hidden_size\" : 16,\n"
                        + "  \"num_key_value_heads\" : 2,\n  \"head_dim\" : 4,\n"
                        + "  \"prefix_dropout\" : 0.0,\n  \"dtype\" : \"float32\",\n"
                        + "  \"tensor_parallel_degree\" : 1\n}\n");
        Files.writeString(
                dir.resolve("prefix_config.json"),
                "{\n  \"base_model_name_or_path\" : null,\n  \"num_prefix_tokens\" : 5,\n"
                        + "  \"num_attention_heads\" : 4,\n  \"multi_query_group_num\" : 2,\n"
                        + "  \"num_hidden_layers\" : 2,\n  \"hidden_size\" : 16,\n"
                        + "  \"prefix_projection\" : false,\n"
                        + "  \"prefix_projection_hidden_size\" : 0,\n  \"prefix_dropout\" : 0.0,\n"
                        + "  \"tensor_parallel_degree\" : 1,\n  \"dtype\" : \"float32\"\n}\n");
        PrefixConfig read = PrefixConfig.fromPretrained(dir);
        assertEquals(4, read.getNumAttentionHeads());
        assertEquals(2, read.getNumKeyValueHeads());
        assertLoadedEqualsSaved(
                model,
                expected,
                PrefixModelForCausalLM.fromPretrained(TinyDecoder.create(manager, 1), dir));
    }
}
