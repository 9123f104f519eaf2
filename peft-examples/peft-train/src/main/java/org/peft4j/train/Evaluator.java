package org.peft4j.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;

import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.train.data.Batch;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.parallel.comm.Communicator;
import org.peft4j.parallel.comm.SingleProcess;

import java.util.List;

/** Computes {@link Metrics} of a causal language model over examples, without gradients. */
public final class Evaluator {

    private Evaluator() {}

    /**
     * Evaluates a model in this process.
     *
     * @param model the model (base, LoRA or prefix)
     * @param examples the examples
     * @param batchSize examples per forward pass
     * @param manager the manager under which temporary arrays live
     * @return the metrics over every target token
     */
    public static Metrics evaluate(
            Block model, List<TokenizedExample> examples, int batchSize, NDManager manager) {
        return evaluate(model, examples, batchSize, manager, SingleProcess.INSTANCE);
    }

    /**
     * Evaluates a model over data-parallel replicas: replica {@code r} of {@code D} takes the
     * examples {@code [r n / D, (r + 1) n / D)}, and the loss, token and hit counts are summed over
     * the replicas. A collective: every rank calls it, and the tensor-parallel ranks of a replica
     * evaluate its share together.
     *
     * @param model the model (base, LoRA or prefix; this rank's part of a split one)
     * @param examples every example, the same list on every rank
     * @param batchSize examples per forward pass
     * @param manager the manager under which temporary arrays live
     * @param dataParallel the data-parallel group (this replica's peers)
     * @return the metrics over every target token of {@code examples}, the same on every rank
     */
    @SuppressWarnings("try") // the scope frees every array of a batch
    public static Metrics evaluate(
            Block model,
            List<TokenizedExample> examples,
            int batchSize,
            NDManager manager,
            Communicator dataParallel) {
        long n = examples.size();
        int replicas = dataParallel.getWorldSize();
        int replica = dataParallel.getRank();
        List<TokenizedExample> share =
                examples.subList(
                        (int) (replica * n / replicas), (int) ((replica + 1) * n / replicas));
        ParameterStore ps = new ParameterStore(manager, false);
        double lossSum = 0;
        long correct = 0;
        long count = 0;
        for (int from = 0; from < share.size(); from += batchSize) {
            List<TokenizedExample> slice =
                    share.subList(from, Math.min(from + batchSize, share.size()));
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
        double[] totals = dataParallel.sums(lossSum, correct, count); // counts exact below 2^53
        long tokens = Math.round(totals[2]);
        return new Metrics(
                tokens == 0 ? 0 : totals[0] / tokens, tokens == 0 ? 0 : totals[1] / tokens, tokens);
    }
}
