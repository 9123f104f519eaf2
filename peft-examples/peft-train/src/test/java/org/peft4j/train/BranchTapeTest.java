package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertClose;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.peft4j.core.PeftModel;
import org.peft4j.core.Scalars;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.train.data.Batch;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.models.llama.LlamaConfig;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRALinear;
import org.peft4j.lora.LoRAModel;
import org.peft4j.parallel.BranchTape;
import org.peft4j.parallel.TensorParallel;
import org.peft4j.prefix.PrefixConfig;
import org.peft4j.prefix.PrefixModelForCausalLM;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The segment-wise backward pass of {@link BranchTape} on one process, where it must give exactly
 * the gradients of the ordinary backward pass: every segment boundary, the stem, the shared prefix
 * and the head are crossed, and a wrong hand-over of gradients shows.
 */
class BranchTapeTest {

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private LlamaForCausalLM llama(boolean tied) {
        return LlamaForCausalLM.random(
                LlamaConfig.builder()
                        .setSizes(32, 64, 3, 4, 2, 48)
                        .optTieWordEmbeddings(tied)
                        .build(),
                manager,
                11);
    }

    private static List<TokenizedExample> examples() {
        return List.of(
                new TokenizedExample(
                        new int[] {1, 5, 9, 13, 17, 21, 25},
                        new int[] {-100, -100, 9, 13, 17, 21, 25}),
                new TokenizedExample(new int[] {1, 7, 3, 44}, new int[] {-100, 7, 3, 44}));
    }

    /** The gradients of the mean token loss, by the ordinary or the segment-wise backward pass. */
    private Map<String, float[]> gradients(PeftModel model, boolean segments) {
        Batch batch = Batch.of(examples(), manager);
        BranchTape tape = segments ? new BranchTape(TensorParallel.single()) : null;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray logits =
                    model.forward(
                                    new ParameterStore(manager, false),
                                    batch.modelInput(),
                                    true,
                                    tape == null ? null : tape.asParams())
                            .head();
            NDArray[] sum = TokenCrossEntropy.sumAndCount(logits, batch.labels());
            NDArray loss = Scalars.div(sum[0], sum[1].getFloat());
            if (tape == null) {
                collector.backward(loss);
            } else {
                tape.backward(collector, loss);
            }
        }
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> entry : model.getTrainableParameters().entrySet()) {
            NDArray g = entry.getValue().getArray().getGradient();
            out.put(entry.getKey(), g.toFloatArray());
            g.subi(g);
        }
        return out;
    }

    private void assertSameGradients(PeftModel model) {
        Map<String, float[]> expected = gradients(model, false);
        Map<String, float[]> actual = gradients(model, true);
        assertEquals(expected.keySet(), actual.keySet());
        double largest = 0;
        for (String name : expected.keySet()) {
            try {
                assertClose(expected.get(name), actual.get(name), 1e-6);
            } catch (AssertionError e) {
                throw new AssertionError(name + ": " + e.getMessage(), e);
            }
            for (float v : expected.get(name)) {
                largest = Math.max(largest, Math.abs(v));
            }
        }
        assertTrue(largest > 1e-4, "the gradients are not all zero: " + largest);
    }

    @Test
    void loraGradientsMatchTheOrdinaryBackwardPass() {
        for (boolean tied : new boolean[] {false, true}) {
            LoRAModel model =
                    new LoRAModel(
                            llama(tied),
                            LoRAConfig.builder()
                                    .setTargetModules(".*_proj")
                                    .optR(4)
                                    .optTrainableModules(
                                            List.of("model.embed_tokens", "model.norm"))
                                    .build());
            for (LoRALinear layer : model.getLoRALayers().values()) {
                NDArray b = layer.getLoraB().getArray();
                b.addi(manager.randomNormal(0, 0.05f, b.getShape(), b.getDataType()));
            }
            assertSameGradients(model);
        }
    }

    @Test
    void prefixGradientsMatchTheOrdinaryBackwardPass() {
        LlamaForCausalLM llama = llama(false);
        PrefixModelForCausalLM model =
                new PrefixModelForCausalLM(
                        llama,
                        PrefixConfig.builder()
                                .fromModel(llama)
                                .setNumPrefixTokens(3)
                                .optPrefixProjection(16)
                                .build());
        assertSameGradients(model);
    }
}
