package org.peft4j.examples.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;

import org.peft4j.core.Scalars;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.examples.data.Batch;
import org.peft4j.examples.data.TokenizedExample;

import java.util.List;

/**
 * One optimizer step: forward and backward over micro-batches (the loss of each is its summed token
 * loss over the step's total target tokens, so the gradient is that of the mean over all of them),
 * global-norm clipping, an {@link AdamW} update. Every array the step creates is freed when it
 * returns.
 */
public final class TrainingStep {

    private final TrainableModel model;
    private final AdamW optimizer;
    private final double maxGradNorm;
    private final ParameterStore parameters;
    private final NDManager manager;
    private final boolean measureAccuracy;

    /**
     * Creates the step.
     *
     * @param model what is trained
     * @param optimizer the optimizer over its trainable parameters
     * @param maxGradNorm the clipping norm; 0 for none
     * @param manager the manager under which each step's arrays live
     * @param measureAccuracy whether to count exactly predicted tokens (an extra pass over the
     *     logits)
     * @throws UnsupportedOperationException if the model is split across tensor-parallel ranks: its
     *     gradients need collectives in the backward pass that this step does not run, and it would
     *     train on partial gradients without a word
     */
    public TrainingStep(
            TrainableModel model,
            AdamW optimizer,
            double maxGradNorm,
            NDManager manager,
            boolean measureAccuracy) {
        int degree = Shardings.degree(model.block());
        if (degree > 1) {
            throw new UnsupportedOperationException(
                    "the model is split across "
                            + degree
                            + " tensor-parallel ranks; this training step computes single-process"
                            + " gradients only. Train with tensor_parallel_degree 1, then load the"
                            + " adapter into the tensor-parallel model");
        }
        this.measureAccuracy = measureAccuracy;
        this.model = model;
        this.optimizer = optimizer;
        this.maxGradNorm = maxGradNorm;
        this.manager = manager;
        this.parameters = new ParameterStore(manager, false);
    }

    /**
     * What a step measured.
     *
     * @param lossSum the summed token loss
     * @param correct target tokens predicted exactly (0 unless measured)
     * @param gradNorm the global gradient norm before clipping
     */
    public record Outcome(double lossSum, long correct, double gradNorm) {}

    /**
     * Runs a step.
     *
     * @param microBatches the examples of each micro-batch
     * @param targets the number of target tokens over all micro-batches
     * @param learningRate the step's rate
     * @return the outcome
     * @throws IllegalStateException if the loss or gradient is not finite
     */
    @SuppressWarnings("try") // the scope frees every array of the step
    public Outcome run(
            List<List<TokenizedExample>> microBatches, long targets, double learningRate) {
        double lossSum = 0;
        long correct = 0;
        double gradNorm;
        try (NDScope scope = new NDScope();
                NDManager stepManager = manager.newSubManager()) {
            for (List<TokenizedExample> micro : microBatches) {
                Batch batch = Batch.of(micro, stepManager);
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray logits =
                            model.block().forward(parameters, batch.modelInput(), true).head();
                    NDArray[] sum = TokenCrossEntropy.sumAndCount(logits, batch.labels());
                    collector.backward(Scalars.div(sum[0], Math.max(1, targets)));
                    lossSum += sum[0].getFloat();
                    if (measureAccuracy) {
                        correct += TokenCrossEntropy.accuracy(logits, batch.labels())[0];
                    }
                }
            }
            gradNorm = optimizer.gradientNorm();
            if (!Double.isFinite(gradNorm) || !Double.isFinite(lossSum)) {
                throw new IllegalStateException(
                        "training diverged (loss "
                                + lossSum
                                + ", gradient norm "
                                + gradNorm
                                + "); lower the learning rate or raise warmup");
            }
            double scale =
                    maxGradNorm > 0 && gradNorm > maxGradNorm ? maxGradNorm / (gradNorm + 1e-6) : 1;
            optimizer.step(learningRate, scale);
        }
        return new Outcome(lossSum, correct, gradNorm);
    }
}
