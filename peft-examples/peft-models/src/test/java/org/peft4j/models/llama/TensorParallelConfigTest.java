package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.peft4j.core.config.JsonConfigReader;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;

/** The tensor-parallel settings of the Llama config, checked without a second process. */
class TensorParallelConfigTest {

    private static LlamaConfig.Builder sizes(int heads, int kvHeads, int inner, int vocab) {
        return LlamaConfig.builder().setSizes(heads * 8, inner, 2, heads, kvHeads, vocab);
    }

    @Test
    void aDegreeThatDoesNotDivideFailsNamingTheKey() {
        String[][] cases = {
            {"num_attention_heads", "3", "3", "8", "16"},
            {"num_key_value_heads", "4", "1", "8", "16"},
            {"intermediate_size", "4", "2", "9", "16"},
            {"vocab_size", "4", "2", "8", "17"},
        };
        for (String[] c : cases) {
            LlamaConfig.Builder builder =
                    sizes(
                                    Integer.parseInt(c[1]),
                                    Integer.parseInt(c[2]),
                                    Integer.parseInt(c[3]),
                                    Integer.parseInt(c[4]))
                            .optTensorParallel(2, 0, false);
            IllegalArgumentException error =
                    assertThrows(IllegalArgumentException.class, builder::build, c[0]);
            assertTrue(error.getMessage().startsWith(c[0]), error.getMessage());
            assertTrue(error.getMessage().contains("tensor_parallel_degree 2"), error.getMessage());
        }
        assertThrows(
                IllegalArgumentException.class,
                () -> sizes(4, 2, 8, 16).optTensorParallel(2, 2, false).build());
    }

    @Test
    void aSplitConfigNeedsItsGroup() {
        LlamaConfig config = sizes(4, 2, 8, 16).optTensorParallel(2, 1, false).build();
        IllegalArgumentException error =
                assertThrows(IllegalArgumentException.class, () -> new LlamaForCausalLM(config));
        assertTrue(error.getMessage().contains("tensor_parallel_degree 2"), error.getMessage());
    }

    @Test
    void readsPaddleNlpKeysAndLeavesThemOutOfConfigJson() {
        LlamaConfig config =
                LlamaConfig.read(
                        JsonConfigReader.parse(
                                "{\"model_type\": \"llama\", \"hidden_size\": 32,"
                                        + " \"intermediate_size\": 64, \"num_hidden_layers\": 1,"
                                        + " \"num_attention_heads\": 4, \"vocab_size\": 16,"
                                        + " \"tensor_parallel_degree\": 2,"
                                        + " \"tensor_parallel_rank\": 1,"
                                        + " \"tensor_parallel_output\": true}",
                                "config.json"));
        assertEquals(2, config.getTensorParallelDegree());
        assertEquals(1, config.getTensorParallelRank());
        assertTrue(config.isTensorParallelOutput());
        assertFalse(config.toJson().has("tensor_parallel_degree"));
        LlamaConfig none =
                LlamaConfig.read(
                        JsonConfigReader.parse(
                                "{\"model_type\": \"llama\", \"hidden_size\": 32,"
                                        + " \"intermediate_size\": 64, \"num_hidden_layers\": 1,"
                                        + " \"num_attention_heads\": 4, \"vocab_size\": 16,"
                                        + " \"tensor_parallel_degree\": -1}",
                                "config.json"));
        assertEquals(1, none.getTensorParallelDegree());
    }
}
