package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;
import static org.peft4j.core.testing.ArrayAssertions.floats;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.testing.ConfigFields;
import org.peft4j.core.testing.HfTargetRules;
import org.peft4j.core.tree.BlockPaths;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.IntFunction;

/**
 * What the two config files of a saved LoRA adapter say, read as plain JSON and judged by the
 * Python tools' own rules ({@link HfTargetRules}, {@link ConfigFields}), not by peft4j's matcher.
 */
class LoRAAdapterFilesTest {

    private static final ObjectMapper JSON = new ObjectMapper();

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

    /** {@code 0: Linear, 1: (0: Linear, 1: relu, 2: Linear), 2: Linear}: "0" names two layers. */
    private SequentialBlock nested(int seed) {
        ai.djl.engine.Engine.getInstance().setRandomSeed(seed);
        SequentialBlock inner =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(8).build())
                        .add(Activation.reluBlock())
                        .add(Linear.builder().setUnits(8).build());
        SequentialBlock block =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(8).build())
                        .add(inner)
                        .add(Linear.builder().setUnits(4).build());
        block.initialize(manager, DataType.FLOAT32, new Shape(1, 8));
        return block;
    }

    /** The module paths the adapter's weights file holds LoRA tensors for. */
    private static Set<String> adaptedByTensors(Path dir) throws IOException {
        Set<String> out = new TreeSet<>();
        try (SafetensorsReader reader =
                SafetensorsReader.open(dir.resolve("adapter_model.safetensors"))) {
            for (String key : reader.getTensors().keySet()) {
                if (key.endsWith(".lora_A.weight")) {
                    out.add(
                            key.substring(
                                    "base_model.model.".length(),
                                    key.length() - ".lora_A.weight".length()));
                }
            }
        }
        return out;
    }

    /**
     * Saves an adapter of {@code config} on a fresh base and checks both files against the tools'
     * rules over every module name of the base model; returns adapter_config.json.
     */
    private JsonNode saveAndJudge(IntFunction<Block> base, LoRAConfig config, String name)
            throws IOException {
        Path out = dir.resolve(name);
        LoRAModel model = new LoRAModel(base.apply(1), config);
        model.savePretrained(out);
        Set<String> moduleNames = BlockPaths.blocks(base.apply(1)).keySet();
        Set<String> adapted = adaptedByTensors(out);
        assertEquals(new TreeSet<>(model.getLoRALayers().keySet()), adapted, name);
        JsonNode hf = JSON.readTree(out.resolve("adapter_config.json").toFile());
        assertEquals(
                adapted,
                HfTargetRules.hfSelected(hf, moduleNames),
                name + ": Hugging Face PEFT's rules on adapter_config.json select exactly the"
                        + " adapted layers; target_modules = "
                        + hf.get("target_modules"));
        JsonNode paddle = JSON.readTree(out.resolve("lora_config.json").toFile());
        assertEquals(
                adapted,
                HfTargetRules.paddleSelected(paddle, moduleNames),
                name + ": PaddleNLP's rule on lora_config.json; target_modules = "
                        + paddle.get("target_modules"));
        Set<String> extraHf = HfTargetRules.fields(hf);
        extraHf.removeAll(ConfigFields.HF_LORA_CONFIG);
        assertEquals(Set.of(), extraHf, name + ": fields that HF's LoraConfig does not define");
        Set<String> extraPaddle = HfTargetRules.fields(paddle);
        extraPaddle.removeAll(ConfigFields.PADDLE_LORA_CONFIG);
        assertEquals(Set.of(), extraPaddle, name + ": fields PaddleNLP's LoRAConfig lacks");
        LoRAModel loaded = LoRAModel.fromPretrained(base.apply(1), out);
        assertEquals(model.getLoRALayers().keySet(), loaded.getLoRALayers().keySet(), name);
        return hf;
    }

    @Test
    void adapterConfigTargetsSelectExactlyTheAdaptedLayersUnderHuggingFacesRules()
            throws IOException {
        IntFunction<Block> encoder = seed -> TestModels.encoder(manager, seed);
        JsonNode seedList =
                saveAndJudge(
                        encoder,
                        LoRAConfig.builder()
                                .setTargetModules(".*queryProjection.*", ".*valueProjection.*")
                                .build(),
                        "seed-regex-list");
        assertEquals(
                "[\"queryProjection\",\"valueProjection\"]",
                seedList.get("target_modules").toString(),
                "plain names whenever they are unique");
        JsonNode names =
                saveAndJudge(
                        encoder,
                        LoRAConfig.builder()
                                .setTargetModules("queryProjection", "valueProjection")
                                .build(),
                        "names");
        assertEquals(seedList.get("target_modules"), names.get("target_modules"));
        saveAndJudge(
                encoder,
                LoRAConfig.builder().setTargetModules(".*\\.(query|value)Projection").build(),
                "single-regex");
        saveAndJudge(
                encoder,
                LoRAConfig.builder()
                        .setTargetModules(List.of(".*Projection"))
                        .optExcludeModules(List.of("resultProjection"))
                        .build(),
                "excluded");

        IntFunction<Block> nested = this::nested;
        JsonNode outer =
                saveAndJudge(
                        nested,
                        LoRAConfig.builder().setTargetModules("0|2").build(),
                        "ambiguous-names");
        assertEquals(
                "0|2",
                outer.get("target_modules").textValue(),
                "\"0\" also names 1.0: the config's own regex, which selects exactly");
        JsonNode javaOnly =
                saveAndJudge(
                        nested,
                        LoRAConfig.builder().setTargetModules("(?i)0|2").build(),
                        "java-only-regex");
        assertEquals(
                "0|2",
                javaOnly.get("target_modules").textValue(),
                "a regex Python reads otherwise gives way to the adapted paths");
        JsonNode allLinear =
                saveAndJudge(
                        nested,
                        LoRAConfig.builder().setTargetModules("0", "2").build(),
                        "nested-names");
        assertEquals("[\"0\",\"2\"]", allLinear.get("target_modules").toString());
        saveAndJudge(
                nested,
                LoRAConfig.builder().setTargetModules(List.of("1\\.[02]")).build(),
                "inner-only");
    }

    @Test
    void aConfigSavedAloneRefusesARegexPythonReadsOtherwise() {
        LoRAConfig config = LoRAConfig.builder().setTargetModules(".*\\d\\.q_proj").build();
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> config.savePretrained(dir));
        assertTrue(e.getMessage().contains("\\d"), e.getMessage());
        assertTrue(e.getMessage().contains("[0-9]"), e.getMessage());
        assertTrue(
                !Files.exists(dir.resolve("adapter_config.json"))
                        && !Files.exists(dir.resolve("lora_config.json")),
                "nothing written");
    }

    private LoRAModel trained(LoRAConfig config) {
        LoRAModel model = new LoRAModel(TestModels.mlp(manager, 1), config);
        for (LoRALinear layer : model.getLoRALayers().values()) {
            layer.getLoraB().getArray().addi(manager.randomNormal(layer.getLoraB().getShape()));
        }
        return model;
    }

    private static void replaceInFile(Path file, String from, String to) throws IOException {
        String text = Files.readString(file);
        assertTrue(text.contains(from), file + " holds " + from + ": " + text);
        Files.writeString(file, text.replace(from, to));
    }

    @Test
    void theTwoFilesMustAgree() throws IOException {
        trained(LoRAConfig.builder().setTargetModules("0", "2").optR(2).build())
                .savePretrained(dir);
        Path seed = dir.resolve("lora_config.json");
        String good = Files.readString(seed);
        replaceInFile(seed, "\"r\" : 2", "\"r\" : 16");
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir));
        for (String part :
                List.of("adapter_config.json", "lora_config.json", "\"r\": 2", "\"r\": 16")) {
            assertTrue(e.getMessage().contains(part), e.getMessage());
        }
        assertTrue(e.getMessage().contains("correct the wrong one"), e.getMessage());

        Files.writeString(seed, good);
        replaceInFile(seed, "\"(?:.*\\\\.)?2\"", "\"4\"");
        IllegalArgumentException targets =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir));
        assertTrue(targets.getMessage().contains("target_modules"), targets.getMessage());
        assertTrue(targets.getMessage().contains("only the first selects [2]"), targets.getMessage());
        assertTrue(targets.getMessage().contains("only the second [4]"), targets.getMessage());
    }

    @Test
    void bytesThatAreNotUtf8AreRefusedInEitherFile() throws IOException {
        trained(LoRAConfig.builder().setTargetModules("0").build()).savePretrained(dir);
        for (String name : List.of("adapter_config.json", "lora_config.json")) {
            Path file = dir.resolve(name);
            byte[] good = Files.readAllBytes(file);
            String text = new String(good, StandardCharsets.UTF_8);
            int at = text.indexOf("\"0\"") + 1;
            byte[] bad = good.clone();
            bad[at] = (byte) 0xE9; // Latin-1 'é' where UTF-8 wants a multi-byte sequence
            Files.write(file, bad);
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir));
            assertTrue(e.getMessage().contains(name), e.getMessage());
            assertTrue(e.getMessage().contains("byte offset " + at), e.getMessage());
            assertTrue(e.getMessage().contains("0xE9"), e.getMessage());
            assertTrue(e.getMessage().contains("save the file as UTF-8"), e.getMessage());
            Files.write(file, good);
        }
    }

    /** The saved model's adapter parameters, by path. */
    private static java.util.Map<String, float[]> adapter(LoRAModel model) {
        java.util.Map<String, float[]> out = new java.util.LinkedHashMap<>();
        model.adapterState().forEach((k, p) -> out.put(k, floats(p.getArray())));
        return out;
    }

    private void assertLoadsAs(LoRAModel saved, double scaling) throws IOException {
        LoRAModel loaded = LoRAModel.fromPretrained(TestModels.mlp(manager, 1), dir);
        assertEquals(saved.getLoRALayers().keySet(), loaded.getLoRALayers().keySet());
        assertEquals(scaling, loaded.getPeftConfig().getScaling());
        java.util.Map<String, float[]> a = adapter(saved);
        java.util.Map<String, float[]> b = adapter(loaded);
        assertEquals(a.keySet(), b.keySet());
        a.forEach((k, v) -> assertSameBits(v, b.get(k), k + ": copied through the file"));
    }

    @Test
    void readsAdaptersOfThePreviousPeft4jVersion() throws IOException {
        LoRAModel model =
                trained(
                        LoRAConfig.builder()
                                .setTargetModules("0", "4")
                                .optR(8)
                                .optLoraAlpha(16)
                                .optTrainableBias(TrainableBias.LORA)
                                .build());
        model.savePretrained(dir);
        Files.delete(dir.resolve("lora_config.json"));
        // adapter_config.json as peft4j 0.1.0 wrote it: regexes and PaddleNLP's fields inside
        Files.writeString(
                dir.resolve("adapter_config.json"),
                "{\n  \"peft_type\" : \"LORA\",\n  \"task_type\" : null,\n"
                        + "  \"base_model_name_or_path\" : null,\n  \"inference_mode\" : true,\n"
                        + "  \"r\" : 8,\n  \"lora_alpha\" : 16,\n"
                        + "  \"target_modules\" : [ \".*0.*\", \".*4.*\" ],\n"
                        + "  \"lora_dropout\" : 0,\n  \"bias\" : \"lora_only\",\n"
                        + "  \"use_rslora\" : false,\n  \"init_lora_weights\" : true,\n"
                        + "  \"fan_in_fan_out\" : false,\n  \"modules_to_save\" : null,\n"
                        + "  \"merge_weights\" : false,\n  \"trainable_modules\" : [ ],\n"
                        + "  \"dtype\" : \"float32\",\n  \"tensor_parallel_degree\" : 1\n}\n");
        assertLoadsAs(model, 2.0);
    }

    @Test
    void readsAdaptersWrittenByHuggingFacePeft() throws IOException {
        LoRAModel model =
                trained(LoRAConfig.builder().setTargetModules("2", "4").optR(8).build());
        model.savePretrained(dir);
        Files.delete(dir.resolve("lora_config.json"));
        // as PEFT 0.20's save_pretrained writes it: every field, sorted, target_modules a list
        Files.writeString(
                dir.resolve("adapter_config.json"),
                "{\n  \"alora_invocation_tokens\": null,\n  \"alpha_pattern\": {},\n"
                        + "  \"arrow_config\": null,\n  \"auto_mapping\": null,\n"
                        + "  \"base_model_name_or_path\": \"tiny-mlp\",\n  \"bias\": \"none\",\n"
                        + "  \"corda_config\": null,\n  \"ensure_weight_tying\": false,\n"
                        + "  \"eva_config\": null,\n  \"exclude_modules\": null,\n"
                        + "  \"fan_in_fan_out\": false,\n  \"inference_mode\": true,\n"
                        + "  \"init_lora_weights\": true,\n  \"layer_replication\": null,\n"
                        + "  \"layers_pattern\": null,\n  \"layers_to_transform\": null,\n"
                        + "  \"loftq_config\": {},\n  \"lora_alpha\": 32,\n"
                        + "  \"lora_bias\": false,\n  \"lora_dropout\": 0.05,\n"
                        + "  \"megatron_config\": null,\n  \"megatron_core\": \"megatron.core\",\n"
                        + "  \"modules_to_save\": null,\n  \"peft_type\": \"LORA\",\n"
                        + "  \"peft_version\": \"0.20.0\",\n  \"qalora_group_size\": 16,\n"
                        + "  \"r\": 8,\n  \"rank_pattern\": {},\n  \"revision\": null,\n"
                        + "  \"target_modules\": [\n    \"4\",\n    \"2\"\n  ],\n"
                        + "  \"target_parameters\": null,\n  \"task_type\": null,\n"
                        + "  \"trainable_token_indices\": null,\n  \"use_dora\": false,\n"
                        + "  \"use_qalora\": false,\n  \"use_rslora\": false\n}\n");
        assertLoadsAs(model, 4.0);
    }
}
