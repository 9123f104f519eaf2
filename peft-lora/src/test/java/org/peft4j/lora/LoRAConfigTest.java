package org.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.PeftConfig;
import org.peft4j.core.config.JsonConfigReader;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

class LoRAConfigTest {

    @TempDir Path dir;

    private static LoRAConfig.Builder seedStyle() {
        return LoRAConfig.builder()
                .setTargetModules(
                        ".*q_proj.*",
                        ".*v_proj.*",
                        ".*k_proj.*",
                        ".*gate_proj.*",
                        ".*up_proj.*",
                        ".*o_proj.*",
                        ".*down_proj.*");
    }

    @Test
    void defaultsFollowTheSeedAndHuggingFace() {
        LoRAConfig config = seedStyle().build();
        assertEquals("LORA", config.getPeftType());
        assertEquals(8, config.getR());
        assertEquals(8, config.getLoraAlpha());
        assertEquals(1.0, config.getScaling());
        assertEquals(0, config.getLoraDropout());
        assertFalse(config.isMergeWeights());
        assertEquals(TrainableBias.NONE, config.getTrainableBias());
        assertEquals(LoRAInit.KAIMING_UNIFORM, config.getInitLoraWeights());
        assertEquals(DataType.FLOAT32, config.getDtype());
        assertEquals(1, config.getTensorParallelDegree());
    }

    @Test
    void rsloraScalesByTheSquareRootOfTheRank() {
        assertEquals(16.0 / 8, seedStyle().optR(8).optLoraAlpha(16).build().getScaling());
        assertEquals(
                16.0 / Math.sqrt(8),
                seedStyle().optR(8).optLoraAlpha(16).optUseRslora(true).build().getScaling(),
                1e-12);
    }

    @Test
    void bothFilesTogetherKeepEveryFieldEachInItsToolsFile() throws IOException {
        LoRAConfig config =
                seedStyle()
                        .optR(4)
                        .optLoraAlpha(12.5)
                        .optLoraDropout(0.05)
                        .optMergeWeights(true)
                        .optTrainableBias(TrainableBias.LORA)
                        .optTrainableModules(List.of("model\\.norm\\.weight"))
                        .optUseRslora(true)
                        .optInitLoraWeights(LoRAInit.GAUSSIAN)
                        .optDtype(DataType.FLOAT16)
                        .optTaskType("CAUSAL_LM")
                        .optBaseModelNameOrPath("stories260K")
                        .build();
        config.savePretrained(dir);
        LoRAConfig read = LoRAConfig.fromPretrained(dir);
        assertEquals(config, read);
        String hf = Files.readString(dir.resolve("adapter_config.json"));
        assertTrue(hf.contains("\"bias\" : \"lora_only\""), hf);
        assertTrue(hf.contains("\"init_lora_weights\" : \"gaussian\""), hf);
        assertTrue(hf.contains("\"lora_alpha\" : 12.5"), hf);
        assertFalse(hf.contains("dtype") || hf.contains("merge_weights"), hf);
        String seed = Files.readString(dir.resolve("lora_config.json"));
        assertTrue(seed.contains("\"dtype\" : \"float16\""), seed);
        assertTrue(seed.contains("\"trainable_bias\" : \"lora\""), seed);
        assertTrue(seed.contains("\"rslora\" : true"), seed);
        assertTrue(seed.contains("\"merge_weights\" : true"), seed);
    }

    @Test
    void excludeModulesIsHuggingFacesOnly() {
        LoRAConfig config = seedStyle().optExcludeModules(List.of("lm_head")).build();
        assertTrue(config.toJsonString().contains("\"exclude_modules\" : [ \"lm_head\" ]"));
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, config::toSeedJson);
        assertTrue(e.getMessage().contains("LoRAModel.savePretrained"), e.getMessage());
        LoRAConfig read =
                (LoRAConfig) PeftConfig.fromJson(config.toJsonString(), "adapter_config.json");
        for (String path : List.of("model.layers.0.self_attn.q_proj", "lm_head", "model.norm")) {
            assertEquals(
                    config.getTargetModules().matches(path),
                    read.getTargetModules().matches(path),
                    path + ": the written alternation selects what the list selects");
        }
        assertEquals(List.of("lm_head"), read.getExcludeModules().getEntries());
    }

    @Test
    void singleRegexTargetsStayAString() {
        LoRAConfig config = LoRAConfig.builder().setTargetModules(".*(q|v)_proj").build();
        assertTrue(config.toJsonString().contains("\"target_modules\" : \".*(q|v)_proj\""));
        LoRAConfig read = (LoRAConfig) PeftConfig.fromJson(config.toJsonString(), "test");
        assertTrue(read.getTargetModules().isSingleRegex());
    }

    @Test
    void readsTheSeedsLoraConfigJson() throws IOException {
        Files.writeString(
                dir.resolve("lora_config.json"),
                "{\"base_model_name_or_path\": \"facebook/llama-7b\", \"r\": 8, \"lora_alpha\": 16,"
                    + " \"target_modules\": [\".*q_proj.*\", \".*v_proj.*\"],"
                    + " \"trainable_modules\": null, \"trainable_bias\": \"lora\","
                    + " \"lora_dropout\": 0.0, \"merge_weights\": true, \"rslora\": true,"
                    + " \"tensor_parallel_degree\": -1, \"dtype\": \"float32\","
                    + " \"enable_lora_list\": null, \"head_dim\": null, \"lora_plus_scale\": 1.0,"
                    + " \"pissa\": false, \"use_quick_lora\": false}");
        LoRAConfig config = LoRAConfig.fromPretrained(dir);
        assertEquals(8, config.getR());
        assertEquals(16, config.getLoraAlpha());
        assertTrue(config.isMergeWeights());
        assertTrue(config.isUseRslora());
        assertEquals(TrainableBias.LORA, config.getTrainableBias());
        assertEquals(1, config.getTensorParallelDegree());
        assertEquals("facebook/llama-7b", config.getBaseModelNameOrPath());
        assertTrue(config.getTargetModules().matches("llama.layers.0.self_attn.q_proj"));
    }

    @Test
    void readsAHuggingFaceAdapterConfigAndSkipsUnknownKeys() throws IOException {
        String hf =
                "{\"alpha_pattern\": {}, \"auto_mapping\": null, \"base_model_name_or_path\":"
                        + " \"TinyLlama/TinyLlama-1.1B\", \"bias\": \"none\", \"fan_in_fan_out\":"
                        + " false, \"inference_mode\": true, \"init_lora_weights\": true,"
                        + " \"layers_pattern\": null, \"layers_to_transform\": null,"
                        + " \"loftq_config\": {}, \"lora_alpha\": 32, \"lora_dropout\": 0.05,"
                        + " \"megatron_config\": null, \"megatron_core\": \"megatron.core\","
                        + " \"modules_to_save\": null, \"peft_type\": \"LORA\", \"r\": 16,"
                        + " \"rank_pattern\": {}, \"revision\": null, \"target_modules\":"
                        + " [\"v_proj\", \"q_proj\"], \"task_type\": \"CAUSAL_LM\","
                        + " \"use_dora\": false, \"use_rslora\": false, \"a_future_field\": 3}";
        JsonConfigReader reader = JsonConfigReader.parse(hf, "adapter_config.json");
        LoRAConfig config = LoRAConfig.read(reader);
        assertEquals(16, config.getR());
        assertEquals(2.0, config.getScaling());
        assertEquals("CAUSAL_LM", config.getTaskType());
        assertTrue(config.getTargetModules().matches("model.layers.0.self_attn.q_proj"));
        assertEquals(List.of("a_future_field"), reader.warnAboutUnreadKeys());
    }

    private static void assertInvalid(LoRAConfig.Builder builder, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, builder::build);
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), e.getMessage());
        }
    }

    @Test
    void invalidValuesFailInBuildNamingTheFieldAndRange() {
        assertInvalid(seedStyle().optR(0), "r must be", "> 0", "0");
        assertInvalid(seedStyle().optR(-3), "r must be");
        assertInvalid(seedStyle().optLoraDropout(1.0), "lora_dropout", "[0, 1)");
        assertInvalid(seedStyle().optLoraDropout(-0.1), "lora_dropout", "[0, 1)");
        assertInvalid(seedStyle().optLoraAlpha(0), "lora_alpha", "> 0");
        assertInvalid(seedStyle().optLoraAlpha(Double.NaN), "lora_alpha");
        assertInvalid(seedStyle().optDtype(DataType.BFLOAT16), "bfloat16", "float32 or float16");
        assertInvalid(seedStyle().optDtype(DataType.INT32), "dtype");
        assertInvalid(seedStyle().optTensorParallelDegree(0), "tensor_parallel_degree");
        assertInvalid(LoRAConfig.builder(), "target_modules is required");
        assertInvalid(seedStyle().optTrainableModules(List.of("[x")), "trainable_modules", "[x");
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> LoRAConfig.builder().setTargetModules("(q_proj"));
        assertTrue(e.getMessage().contains("(q_proj"));
    }

    private static void assertJsonInvalid(String json, String... fragments) {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> PeftConfig.fromJson(json, "cfg.json"));
        assertTrue(e.getMessage().startsWith("cfg.json"), e.getMessage());
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), e.getMessage());
        }
    }

    @Test
    void aFileInBfloat16IsComputedInFloat32() {
        // PaddleNLP's usual dtype; the engine cannot hold bfloat16, so the adapter is widened
        PeftConfig config =
                PeftConfig.fromJson(
                        "{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\"],"
                                + " \"dtype\": \"bfloat16\"}",
                        "lora_config.json");
        assertEquals(DataType.FLOAT32, config.getDtype());
    }

    @Test
    void malformedFilesFailNamingTheFileAndField() {
        String targets = "\"target_modules\": [\"q_proj\"]";
        assertJsonInvalid(
                "{\"peft_type\": \"LORA\", " + targets + ", \"r\": \"eight\"}", "\"r\"", "integer");
        assertJsonInvalid("{\"peft_type\": \"LORA\", " + targets + ", \"r\": 0}", "r must be");
        assertJsonInvalid(
                "{\"peft_type\": \"LORA\", " + targets + ", \"lora_dropout\": 2}", "lora_dropout");
        assertJsonInvalid(
                "{\"peft_type\": \"LORA\", " + targets + ", \"dtype\": \"int4\"}", "\"dtype\"");
        assertJsonInvalid(
                "{\"peft_type\": \"LORA\", " + targets + ", \"bias\": \"some\"}", "\"bias\"");
        assertJsonInvalid(
                "{\"peft_type\": \"LORA\", " + targets + ", \"use_dora\": true}",
                "use_dora",
                "DoRA");
        assertJsonInvalid(
                "{\"peft_type\": \"LORA\", " + targets + ", \"rank_pattern\": {\"q\": 4}}",
                "rank_pattern");
        assertJsonInvalid(
                "{\"peft_type\": \"LORA\", " + targets + ", \"init_lora_weights\": \"pissa\"}",
                "init_lora_weights");
        assertJsonInvalid(
                "{\"peft_type\": \"LORA\", \"target_modules\": \"(q\"}", "target_modules");
        assertJsonInvalid("{\"peft_type\": \"LORA\", \"r\": 8}", "target_modules is required");
        assertJsonInvalid("{\"peft_type\": \"IA3\"}", "peft_type", "IA3");
        assertJsonInvalid("{\"r\": 8}", "peft_type", "missing");
        assertJsonInvalid("{\"peft_type\": \"LORA\",\n \"r\": 8,,}", "not valid JSON", "line 2");
    }

    @Test
    void aDirectoryWithoutConfigSaysWhatItHolds() throws IOException {
        Files.writeString(dir.resolve("notes.txt"), "x");
        NoSuchFileException e =
                assertThrows(NoSuchFileException.class, () -> LoRAConfig.fromPretrained(dir));
        assertTrue(e.getMessage().contains("adapter_config.json"), e.getMessage());
        assertTrue(e.getMessage().contains("notes.txt"), e.getMessage());
    }

    @Test
    void savesBothConfigFiles() throws IOException {
        LoRAConfig config = seedStyle().build();
        config.savePretrained(dir);
        LoRAConfig read = LoRAConfig.fromPretrained(dir);
        assertEquals(config, read);
        assertNull(read.getExcludeModules());
        assertTrue(Files.isRegularFile(dir.resolve("lora_config.json")));
    }
}
