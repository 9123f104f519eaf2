package org.peft4j.examples.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;

import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.examples.data.Batch;
import org.peft4j.examples.data.TokenizedExample;

import java.util.List;

/** Computes {@link Metrics} of a causal language model over examples, without gradients. */
public final class Evaluator {

    private Evaluator() {}

    /**
     * Evaluates a model.
     *
     * @param model the model (base, LoRA or prefix)
     * @param examples the examples
     * @param batchSize examples per forward pass
     * @param manager the manager under which temporary arrays live
     * @return the metrics over every target token
     */
    @SuppressWarnings("try") // the scope frees every array of a batch
    public static Metrics evaluate(
            Block model, List<TokenizedExample> examples, int batchSize, NDManager manager) {
        ParameterStore ps = new ParameterStore(manager, false);
        double lossSum = 0;
        long correct = 0;
        long count = 0;
        for (int from = 0; from < examples.size(); from += batchSize) {
            List<TokenizedExample> slice =
                    examples.subList(from, Math.min(from + batchSize, examples.size()));
            try (NDScope scope = new NDScope();
                    NDManager batchManager = manager.newSubManager()) {
                Batch batch = Batch.of(slice, batchManager);
                NDArray logits = model.forward(ps, batch.modelInput(), false).head();
                NDArray[] sum = TokenCrossEntropy.sumAndCount(logits, batch.labels());
                lossSum += sum[0].getFloat();
                long[] accuracy = TokenCrossEntropy.accuracy(logits, batch.labels());
                correct += accuracy[0];
                count += accuracy[1];
            }
        }
        return new Metrics(
                count == 0 ? 0 : lossSum / count, count == 0 ? 0 : (double) correct / count, count);
    }
}
