package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertAllClose;
import static org.peft4j.core.testing.ArrayAssertions.gamma;
import static org.peft4j.core.testing.ArrayAssertions.maxAbs;

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
import org.peft4j.models.llama.ParityBounds;
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
 * The segment-wise backward pass of {@link BranchTape} on one process, where it must give the
 * gradients of the ordinary backward pass: every segment boundary, the stem, the shared prefix and
 * the head are crossed, and a wrong hand-over of gradients shows. The two passes run the same
 * products but add the contributions that meet at a boundary in another order, so they agree to
 * float32 rounding ({@code gamma_n} of each tensor's largest gradient, {@link ParityBounds}), not
 * bit for bit.
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

    private static LlamaConfig config(boolean tied) {
        return LlamaConfig.builder()
                .setSizes(32, 64, 3, 4, 2, 48)
                .optTieWordEmbeddings(tied)
                .build();
    }

    private LlamaForCausalLM llama(boolean tied) {
        return LlamaForCausalLM.random(config(tied), manager, 11);
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

    /**
     * Asserts that both passes give every gradient within {@code gamma_n} of its tensor's largest,
     * {@code n} the chain of sums behind one gradient element.
     */
    private void assertSameGradients(PeftModel model, int terms) {
        Map<String, float[]> expected = gradients(model, false);
        Map<String, float[]> actual = gradients(model, true);
        assertEquals(expected.keySet(), actual.keySet());
        double largest = 0;
        double tolerance = gamma(terms);
        for (String name : expected.keySet()) {
            double scale = maxAbs(expected.get(name));
            assertAllClose(
                    expected.get(name),
                    actual.get(name),
                    tolerance,
                    tolerance * scale,
                    name + ": segment-wise gradient within gamma_" + terms + " of the largest");
            largest = Math.max(largest, scale);
        }
        assertTrue(largest > 1e-4, "the gradients are not all zero: " + largest);
    }

    /** The chain behind one gradient element: examples of up to 7 tokens, two of them. */
    private static int gradientTerms(boolean tied, int prefix, int r) {
        return ParityBounds.gradientTerms(config(tied), 7 + prefix, r, 2 * 7);
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
            assertSameGradients(model, gradientTerms(tied, 0, 4));
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
        // a prefix of 3, after the encoder (32 to 16 to the keys and values) both ways
        assertSameGradients(model, gradientTerms(false, 3, 0) + 2 * (32 + 16));
    }
}
