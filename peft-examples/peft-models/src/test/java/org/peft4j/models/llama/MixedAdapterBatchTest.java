package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.peft4j.core.AdapterScope;
import org.peft4j.core.lm.CausalLMGenerator;
import org.peft4j.core.lm.GenerationConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.parallel.testing.RandomArrays;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A batch whose rows use different adapters ({@link LoRAModel#forAdapterRows}) through a whole
 * Llama, whose adapted layers see {@code [B, T, in]} inputs: each row's logits equal that row run
 * alone with its adapter, and the KV-cache generator, which keeps its rows in order and feeds one
 * position per step, generates for each row what that row generates alone.
 */
class MixedAdapterBatchTest {

    private static final List<String> NAMES =
            List.of("sql", LoRAModel.BASE_ADAPTER, LoRAModel.DEFAULT_ADAPTER, "sql");

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    /** A small random Llama with two adapters of other ranks and layers, both nonzero. */
    private LoRAModel model() {
        LlamaConfig config = LlamaConfig.builder().setSizes(32, 64, 2, 4, 2, 64).build();
        LlamaForCausalLM llama = LlamaForCausalLM.random(config, manager, 3, 0.3);
        LoRAModel model =
                new LoRAModel(
                        llama,
                        LoRAConfig.builder().setTargetModules("q_proj", "v_proj").optR(4).build());
        model.addAdapter(
                "sql",
                LoRAConfig.builder()
                        .setTargetModules("v_proj", "o_proj", "down_proj")
                        .optR(2)
                        .optLoraAlpha(4)
                        .build());
        long seed = 10;
        for (String name : model.getAdapterNames()) {
            for (LoRALinear layer : model.getLoRALayers(name).values()) {
                Parameter b = layer.getBranch(name).getLoraB();
                long[] shape = b.getShape().getShape();
                NDArray values = RandomArrays.gaussian(manager, seed++, 0.5, shape);
                b.getArray().addi(values);
            }
        }
        model.eval();
        return model;
    }

    private NDArray logits(LoRAModel model, long[] ids, int rows) {
        NDArray input = manager.create(ids, new Shape(rows, ids.length / rows));
        return model.forward(new ParameterStore(manager, false), new NDList(input), false).head();
    }

    /** Runs {@code body} with only {@code name}'s adapter, or the base model. */
    private static <T> T alone(LoRAModel model, String name, java.util.function.Supplier<T> body) {
        if (name.equals(LoRAModel.BASE_ADAPTER)) {
            try (AdapterScope base = model.disableAdapter()) {
                return body.get();
            }
        }
        model.setAdapter(name);
        return body.get();
    }

    @Test
    void eachRowsLogitsAreThatRowRunAloneWithItsAdapter() {
        eachRowAlone(NAMES); // gathered and put back in order
        eachRowAlone(List.of("sql", "sql", LoRAModel.DEFAULT_ADAPTER, LoRAModel.BASE_ADAPTER));
    }

    private void eachRowAlone(List<String> names) {
        LoRAModel model = model();
        int t = 6;
        long[] ids = new long[names.size() * t];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (i * 37 + 5) % 64;
        }
        NDArray mixed;
        try (AdapterScope rows = model.forAdapterRows(names)) {
            mixed = logits(model, ids, names.size());
        }
        List<NDArray> alone = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            long[] row = Arrays.copyOfRange(ids, i * t, (i + 1) * t);
            alone.add(alone(model, names.get(i), () -> logits(model, row, 1)));
        }
        for (int i = 0; i < names.size(); i++) {
            // the same math on other batch shapes: two layers of dot products over at most 64
            // terms, softmax and norms, so a few hundred roundings of the logits' magnitude
            assertRoundingClose(
                    alone.get(i),
                    mixed.get(i + ":" + (i + 1)),
                    600,
                    "row " + i + " " + names.get(i));
        }
        long[] first = Arrays.copyOfRange(ids, 0, t);
        NDArray firstOnBase = alone(model, LoRAModel.BASE_ADAPTER, () -> logits(model, first, 1));
        assertFalse(
                alone.get(0).allClose(firstOnBase, 1e-3, 1e-3, false),
                "row 0's adapter changes its logits");
    }

    @Test
    void theKvCacheGeneratorGivesEachRowWhatItGeneratesAlone() {
        LoRAModel model = model();
        LlamaForCausalLM llama = (LlamaForCausalLM) model.getBaseModel();
        List<int[]> prompts =
                List.of(new int[] {1, 7, 22}, new int[] {1, 41, 63, 5, 9}, new int[] {1, 2},
                        new int[] {1, 7, 22, 30});
        for (boolean cache : new boolean[] {true, false}) {
            GenerationConfig config =
                    GenerationConfig.builder().optMaxNewTokens(8).optUseCache(cache).build();
            CausalLMGenerator generator = new CausalLMGenerator(llama);
            List<int[]> mixed;
            try (AdapterScope rows = model.forAdapterRows(NAMES)) {
                mixed = generator.generate(prompts, config, manager);
            }
            for (int i = 0; i < NAMES.size(); i++) {
                List<int[]> one = List.of(prompts.get(i));
                int promptLength = prompts.get(i).length;
                String what = "row " + i + " " + NAMES.get(i) + " cache " + cache;
                // the row alone takes a greedy path clear of rounding at every step, so the
                // mixed batch, whose logits differ from it by rounding, must take it too
                int[] expected =
                        alone(
                                model,
                                NAMES.get(i),
                                () -> {
                                    int[] tokens = generator.generate(one, config, manager).get(0);
                                    LlamaRounding.assertClearGreedyPath(
                                            model,
                                            llama.getConfig(),
                                            tokens,
                                            promptLength,
                                            0,
                                            manager,
                                            what);
                                    return tokens;
                                });
                assertArrayEquals(expected, mixed.get(i), what);
            }
        }
    }
}
