package org.peft4j.models.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.U;
import static org.peft4j.core.testing.ArrayAssertions.assertRoundingClose;
import static org.peft4j.core.testing.ArrayAssertions.floats;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;
import static org.peft4j.core.testing.ArrayAssertions.maxAbsDiff;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.parallel.testing.RandomArrays;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

/**
 * LoRA and prefix tuning on each family's reference checkpoint ({@link
 * ModelFamiliesReferenceTest}): grouped-query attention, head sizes of 8, 12 and 16, Qwen2's
 * biased projections, Qwen3's per-head norms and Mistral's window.
 */
class ModelFamiliesAdapterTest {

    private static final long[] CONTEXT = {5, 17, 3, 44, 60, 9};
    private static final long[] INPUT = {21, 8, 70, 33, 2, 51};

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private LlamaForCausalLM reference(String name) throws Exception {
        return LlamaForCausalLM.fromPretrained(ModelFamiliesReferenceTest.reference(name), manager);
    }

    private NDList run(Block block, long[] ids) {
        return block.forward(
                new ParameterStore(manager, false),
                new NDList(manager.create(ids, new Shape(1, ids.length))),
                false);
    }

    private static long[] concat(long[] a, long[] b) {
        long[] out = new long[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "mistral", "qwen2", "qwen3"})
    void aPrefixHoldingTheCacheOfAContextActsAsThatContext(String name) throws Exception {
        // for Mistral, 6 + 6 positions with a window of 4: the window reaches into the prefix
        LlamaForCausalLM llama = reference(name);
        LlamaConfig config = llama.getConfig();
        int p = CONTEXT.length;
        PrefixModelForCausalLM model =
                new PrefixModelForCausalLM(
                        llama,
                        PrefixConfig.builder().fromModel(llama).setNumPrefixTokens(p).build());
        int layers = config.getNumHiddenLayers();
        int width = config.getNumKeyValueHeads() * config.getHeadDim();
        assertEquals((long) p * 2 * layers * width, model.countTrainableParameters());
        NDList cache = run(llama, CONTEXT);
        // the prefix table's layout: [P, (2 layer + key/value) kvHeads d + head d + e]
        NDArray stacked = NDArrays.stack(cache.subNDList(1).subNDList(0, 2 * layers), 0);
        NDArray table = stacked.squeeze(1).transpose(2, 0, 1, 3).reshape(p, 2L * layers * width);
        model.getPrefixEncoder().getEmbedding().getArray().set(table.toFloatArray());
        long[] all = concat(CONTEXT, INPUT);
        NDArray expected = run(llama, all).head().get(":, {}:, :", p);
        assertRoundingClose(
                expected,
                run(model, INPUT).head(),
                LlamaRounding.logits(config, all.length),
                name + ": the prefix against the context");
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "mistral", "qwen2", "qwen3"})
    void loraAdaptsEveryProjectionAndMergesToTheSameLogits(String name) throws Exception {
        LlamaForCausalLM llama = reference(name);
        NDArray base = run(llama, INPUT).head();
        LoRAModel lora =
                new LoRAModel(
                        llama,
                        LoRAConfig.builder()
                                .setTargetModules(LlamaForCausalLM.PROJECTIONS)
                                .optR(2)
                                .optLoraAlpha(4)
                                .build());
        assertEquals(
                7 * llama.getNumHiddenLayers(), lora.getLoRALayers().size(), "seven per layer");
        // B starts at zero; a drawn one makes every delta count
        long seed = 1;
        for (LoRALinear layer : lora.getLoRALayers().values()) {
            NDArray b = layer.getLoraB().getArray();
            NativeArrays.copyInto(
                    b, RandomArrays.gaussian(manager, seed++, 0.3, b.getShape().getShape()));
        }
        NDArray adapted = run(lora, INPUT).head();
        double c = LlamaRounding.logits(llama.getConfig(), INPUT.length);
        double rounding = 2 * c * U * maxAbs(floats(base));
        assertTrue(
                maxAbsDiff(base, adapted) > 100 * rounding,
                name + ": the adapter changes the logits");
        lora.merge();
        assertRoundingClose(
                adapted,
                run(lora, INPUT).head(),
                c,
                name + ": merged weights (biases kept) against the adapter beside them");
    }
}
