package org.peft4j.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;

import org.peft4j.core.Scalars;
import org.peft4j.core.lm.TokenCrossEntropy;
import org.peft4j.core.parallel.Sharding;
import org.peft4j.core.parallel.Shardings;
import org.peft4j.train.data.Batch;
import org.peft4j.train.data.TokenizedExample;
import org.peft4j.parallel.BranchTape;
import org.peft4j.parallel.ParallelGradients;
import org.peft4j.parallel.Parallelism;
import org.peft4j.parallel.TensorParallel;
import org.peft4j.parallel.comm.Communicator;

import java.util.List;
import java.util.Map;

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
    private final Parallelism layout;
    private final Map<String, Sharding> shardings;
    private boolean replicasAligned;

    /**
     * Creates the step of a single-process run.
     *
     * @param model what is trained
     * @param optimizer the optimizer over its trainable parameters
     * @param maxGradNorm the clipping norm; 0 for none
     * @param manager the manager under which each step's arrays live
     * @param measureAccuracy whether to count exactly predicted tokens (an extra pass over the
     *     logits)
     * @throws IllegalArgumentException if the model is split across tensor-parallel ranks (use the
     *     constructor that takes the run's {@link Parallelism})
     */
    public TrainingStep(
            TrainableModel model,
            AdamW optimizer,
            double maxGradNorm,
            NDManager manager,
            boolean measureAccuracy) {
        this(model, optimizer, maxGradNorm, manager, measureAccuracy, Parallelism.single());
    }

    /**
     * Creates the step of a parallel run: with tensor parallelism the forward pass is recorded in
     * segments and the backward pass run segment by segment ({@link BranchTape}); the gradients are
     * then reduced over the groups ({@link ParallelGradients}), and the loss, the target count and
     * the gradient norm are those of the global batch. With data parallelism the trainable
     * parameters of data-parallel rank 0 are broadcast to the other replicas when the first step
     * begins (in {@link #gradients}, a collective anyway), so that all start from the same adapter;
     * the constructor itself communicates with no other rank.
     *
     * @param model what is trained; split as {@code layout}'s tensor-parallel group says
     * @param optimizer the optimizer over its trainable parameters
     * @param maxGradNorm the clipping norm of the global gradient; 0 for none
     * @param manager the manager under which each step's arrays live
     * @param measureAccuracy whether to count exactly predicted tokens
     * @param layout the run's tensor- and data-parallel groups
     * @throws IllegalArgumentException if the model's split disagrees with the layout
     */
    public TrainingStep(
            TrainableModel model,
            AdamW optimizer,
            double maxGradNorm,
            NDManager manager,
            boolean measureAccuracy,
            Parallelism layout) {
        int degree = Shardings.degree(model.block());
        if (degree != layout.getTensorParallel().getDegree()) {
            throw new IllegalArgumentException(
                    "the model is split across "
                            + degree
                            + " tensor-parallel ranks but the run's layout is "
                            + layout
                            + "; build the model with the layout's tensor-parallel group");
        }
        this.measureAccuracy = measureAccuracy;
        this.model = model;
        this.optimizer = optimizer;
        this.maxGradNorm = maxGradNorm;
        this.manager = manager;
        this.parameters = new ParameterStore(manager, false);
        this.layout = layout;
        this.shardings = Shardings.of(model.block(), model.trainableParameters());
        this.replicasAligned = layout.getDataParallel().getWorldSize() == 1;
    }

    /**
     * Broadcasts data-parallel rank 0's trainable parameters to the other replicas, once: replicas
     * must start equal, or an unseeded or differently seeded initialisation on one rank would train
     * a different model there without any error. Done at the first step rather than in the
     * constructor, so that building a step is local and the collective sits with the step's others.
     */
    private void alignReplicas() {
        if (replicasAligned) {
            return;
        }
        for (Parameter parameter : model.trainableParameters().values()) {
            layout.getDataParallel().broadcast(parameter.getArray(), 0);
        }
        replicasAligned = true;
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
     * Runs a step: {@link #gradients} then {@link #apply}. In a parallel run every rank calls it
     * with its own examples.
     *
     * @param microBatches this rank's examples of each micro-batch
     * @param targets this rank's number of target tokens over all micro-batches (summed over the
     *     data-parallel group, so that the gradient is that of the global mean)
     * @param learningRate the step's rate
     * @return the outcome, global over the data-parallel group
     * @throws IllegalStateException if the loss or gradient is not finite
     */
    public Outcome run(
            List<List<TokenizedExample>> microBatches, long targets, double learningRate) {
        Outcome outcome = gradients(microBatches, targets);
        apply(outcome, learningRate);
        return outcome;
    }

    /**
     * Computes the gradients of a step and leaves them on the trainable parameters, reduced over
     * the run's groups: those of the single-process run on the global batch. A collective: every
     * rank calls it; the first call first makes the data-parallel replicas' parameters equal.
     *
     * @param microBatches this rank's examples of each micro-batch
     * @param targets this rank's number of target tokens over all micro-batches
     * @return the global loss, accuracy and gradient norm
     * @throws IllegalStateException if the loss or gradient is not finite
     */
    @SuppressWarnings("try") // the scope frees every array of the pass
    public Outcome gradients(List<List<TokenizedExample>> microBatches, long targets) {
        alignReplicas();
        Communicator data = layout.getDataParallel();
        TensorParallel group = layout.getTensorParallel();
        long globalTargets = Math.round(data.sum(targets));
        double lossSum = 0;
        long correct = 0;
        try (NDScope scope = new NDScope();
                NDManager stepManager = manager.newSubManager()) {
            for (List<TokenizedExample> micro : microBatches) {
                if (micro.isEmpty()) {
                    // a data-parallel share of a short last batch may be empty; the ranks of one
                    // tensor-parallel group hold the same share, so they skip together
                    continue;
                }
                Batch batch = Batch.of(micro, stepManager);
                BranchTape tape = group.getDegree() > 1 ? new BranchTape(group) : null;
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray logits =
                            model.block()
                                    .forward(
                                            parameters,
                                            batch.modelInput(),
                                            true,
                                            tape == null ? null : tape.asParams())
                                    .head();
                    NDArray[] sum = TokenCrossEntropy.sumAndCount(logits, batch.labels());
                    NDArray loss = Scalars.div(sum[0], Math.max(1, globalTargets));
                    if (tape == null) {
                        collector.backward(loss);
                    } else {
                        tape.backward(collector, loss);
                    }
                    lossSum += sum[0].getFloat();
                    if (measureAccuracy) {
                        correct += TokenCrossEntropy.accuracy(logits, batch.labels())[0];
                    }
                }
            }
            Map<String, Parameter> trainable = model.trainableParameters();
            ParallelGradients.reduce(trainable, shardings, layout);
            double gradNorm = ParallelGradients.norm(trainable, shardings, layout);
            double[] sums = data.sums(lossSum, correct);
            lossSum = sums[0];
            correct = Math.round(sums[1]);
            if (!Double.isFinite(gradNorm) || !Double.isFinite(lossSum)) {
                throw new IllegalStateException(
                        "training diverged (loss "
                                + lossSum
                                + ", gradient norm "
                                + gradNorm
                                + "); lower the learning rate or raise warmup");
            }
            return new Outcome(lossSum, correct, gradNorm);
        }
    }

    /**
     * Updates the parameters from the gradients {@link #gradients} left, clipping by the global
     * norm, and zeroes the gradients.
     *
     * @param outcome what {@link #gradients} returned
     * @param learningRate the step's rate
     */
    @SuppressWarnings("try") // the scope frees the update's temporary arrays
    public void apply(Outcome outcome, double learningRate) {
        double norm = outcome.gradNorm();
        double scale = maxGradNorm > 0 && norm > maxGradNorm ? maxGradNorm / (norm + 1e-6) : 1;
        try (NDScope scope = new NDScope()) {
            optimizer.step(learningRate, scale);
        }
    }
}
