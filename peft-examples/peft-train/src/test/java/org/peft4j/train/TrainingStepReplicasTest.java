package org.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.core.testing.ArrayAssertions.assertSameBits;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.peft4j.lora.LoRAConfig;
import org.peft4j.lora.LoRAInit;
import org.peft4j.lora.LoRAModel;
import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.parallel.Parallelism;
import org.peft4j.parallel.testing.RecordingCommunicator;
import org.peft4j.train.data.TokenizedExample;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A data-parallel training step, on a pretend world of two ranks run one after the other: building
 * it communicates nothing; its first step makes the replicas' adapters rank 0's before anything
 * else, and later steps broadcast no more.
 */
class TrainingStepReplicasTest {

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    /** An adapter whose A and B are both random, drawn from the seed. */
    private TrainableModel adapter(int seed) {
        LlamaForCausalLM llama = LlamaForCausalLM.random(FineTunerTest.TINY, manager, 7);
        Engine.getInstance().setRandomSeed(seed);
        return TrainableModel.of(
                new LoRAModel(
                        llama,
                        LoRAConfig.builder()
                                .setTargetModules(LlamaForCausalLM.PROJECTIONS)
                                .optR(2)
                                .optInitLoraWeights(LoRAInit.RANDOM)
                                .build()));
    }

    private static List<float[]> values(TrainableModel model) {
        List<float[]> out = new ArrayList<>();
        for (Parameter parameter : model.trainableParameters().values()) {
            out.add(parameter.getArray().toFloatArray());
        }
        return out;
    }

    @Test
    void constructionIsLocalAndTheFirstStepAlignsTheReplicas() {
        RecordingCommunicator[] world = RecordingCommunicator.group(2);
        List<List<TokenizedExample>> batch = List.of(FineTunerTest.reversal(2, 3));
        long targets = batch.get(0).stream().mapToLong(TokenizedExample::countTargets).sum();
        List<List<float[]>> before = new ArrayList<>();
        List<TrainableModel> models = new ArrayList<>();
        for (RecordingCommunicator rank : world) {
            TrainableModel model = adapter(10 + rank.getRank()); // replicas that differ
            Map<String, Parameter> trainable = model.trainableParameters();
            before.add(values(model));
            models.add(model);
            try (AdamW optimizer = new AdamW(trainable, 0.9, 0.999, 1e-8, 0)) {
                TrainingStep step =
                        new TrainingStep(
                                model, optimizer, 1, manager, false, Parallelism.of(rank, 1));
                assertEquals(List.of(), rank.calls(), "collectives in the constructor");

                step.gradients(batch, targets);
                List<String> calls = rank.calls();
                assertTrue(calls.size() > trainable.size(), "the step's own collectives follow");
                for (int i = 0; i < trainable.size(); i++) {
                    assertTrue(
                            calls.get(i).startsWith("broadcast") && calls.get(i).endsWith("from 0"),
                            "the first step begins with the replicas' alignment, found " + calls);
                }
                rank.clear();
                step.gradients(batch, targets);
                assertTrue(
                        rank.calls().stream().noneMatch(c -> c.startsWith("broadcast")),
                        "a later step broadcasts again: " + rank.calls());
            }
        }
        assertNotEquals(
                before.get(0).get(0)[0], before.get(1).get(0)[0], "the replicas did differ");
        List<float[]> rankZero = before.get(0);
        List<float[]> rankOne = values(models.get(1));
        for (int i = 0; i < rankZero.size(); i++) {
            assertSameBits(rankZero.get(i), rankOne.get(i), "rank 1 holds rank 0's adapter");
        }
    }
}
