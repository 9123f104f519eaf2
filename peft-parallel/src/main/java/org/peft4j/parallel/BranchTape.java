package org.peft4j.parallel;

import ai.djl.engine.EngineException;
import ai.djl.ndarray.NDArray;
import ai.djl.training.GradientCollector;
import ai.djl.util.PairList;

import org.peft4j.core.Scalars;
import org.peft4j.core.io.NativeArrays;

import java.util.ArrayList;
import java.util.List;

/**
 * The exact backward pass of a tensor-parallel residual network, run segment by segment.
 *
 * <p>In a tensor-parallel model every rank holds the whole residual stream {@code h}. A branch
 * {@code h' = h + f(h)} reads {@code h} on every rank, and each rank's part of {@code f} adds its
 * share of {@code df/dh}: the true gradient of {@code h} is {@code dh'} plus the <em>sum over
 * ranks</em> of those shares (the backward half of Megatron's identity/all-reduce operator). DJL
 * runs no collective inside autograd's backward pass, so the model is recorded in pieces instead:
 *
 * <ul>
 *   <li>{@link #stem(NDArray)}: what every rank computes identically before the first branch (the
 *       token embedding); the rest of the pass sees it without history;
 *   <li>{@link #enter(NDArray)} / {@link #exit(NDArray, NDArray)}: a residual branch, run on a
 *       detached copy of {@code h} that records its gradient; its output is already summed over
 *       ranks by the branch's row-parallel layer;
 *   <li>{@link #share(NDArray)}: an input that several branches read and that was computed with
 *       history before them (the key/value prefixes of prefix tuning);
 *   <li>{@link #head(NDArray)}: the last state, which the output projection and the loss read.
 * </ul>
 *
 * <p>{@link #backward(GradientCollector, NDArray)} then runs: the loss's backward pass, which
 * reaches the head's copy; for each branch in reverse order, the backward pass of {@code sum(f(h) *
 * g)} with {@code g} the true gradient of {@code h'}, and {@code g} becomes {@code g +
 * allReduce(grad of h)}; the stem with {@code g / T}; the shared inputs with their gradients. After
 * it, each gradient of a parameter split across ranks is complete, and each gradient of a parameter
 * held whole on every rank is that rank's share: summing those over the group ({@link
 * ParallelGradients}) gives the single-process gradient.
 */
public final class BranchTape {

    /** The key under which the tape travels in the parameters of a forward pass. */
    public static final String KEY = "peft4j.branchTape";

    private final TensorParallel group;
    private final List<NDArray[]> branches = new ArrayList<>();
    private final List<NDArray> stems = new ArrayList<>();
    private final List<NDArray[]> shared = new ArrayList<>();
    private NDArray head;

    /**
     * Creates an empty tape.
     *
     * @param group the tensor-parallel group of the model
     */
    public BranchTape(TensorParallel group) {
        this.group = group;
    }

    /**
     * Returns the tape in a forward pass's parameters.
     *
     * @param params the parameters DJL passes down the blocks, or null
     * @return the tape, or null when the pass is not recorded in segments
     */
    public static BranchTape from(PairList<String, Object> params) {
        if (params == null) {
            return null;
        }
        Object tape = params.get(KEY);
        return tape instanceof BranchTape ? (BranchTape) tape : null;
    }

    /**
     * Returns parameters that carry this tape down a forward pass.
     *
     * @return a new list holding the tape under {@link #KEY}
     */
    public PairList<String, Object> asParams() {
        PairList<String, Object> params = new PairList<>();
        params.add(KEY, this);
        return params;
    }

    /**
     * Records what every rank computes identically before the first branch.
     *
     * @param output the stem's output, with its history
     * @return the same values without history, for the branches to read
     */
    public NDArray stem(NDArray output) {
        stems.add(output);
        return output.stopGradient();
    }

    /**
     * Records an input that several branches read and that carries history (each rank's own part,
     * so its gradient is complete on the rank).
     *
     * @param computed the input, with its history
     * @return a detached copy that records its gradient, for the branches to read
     */
    public NDArray share(NDArray computed) {
        NDArray leaf = leaf(computed);
        shared.add(new NDArray[] {computed, leaf});
        return leaf;
    }

    /**
     * Starts a residual branch.
     *
     * @param state the residual stream {@code h}, the same on every rank
     * @return a detached copy of {@code h} that records its gradient, for the branch to read
     */
    public NDArray enter(NDArray state) {
        return leaf(state);
    }

    /**
     * Ends a residual branch.
     *
     * @param input the copy {@link #enter(NDArray)} returned
     * @param output the branch's output {@code f(h)}, summed over ranks
     * @return {@code h + f(h)} without history, the next branch's state
     */
    public NDArray exit(NDArray input, NDArray output) {
        branches.add(new NDArray[] {input, output});
        try (NDArray values = output.stopGradient()) {
            return input.stopGradient().add(values);
        }
    }

    /**
     * Marks the last state, which the output projection and the loss read.
     *
     * @param state the residual stream after the last branch
     * @return a detached copy that records its gradient
     */
    public NDArray head(NDArray state) {
        head = leaf(state);
        return head;
    }

    /**
     * Runs the backward pass of the recorded forward pass, segment by segment. Every rank of the
     * group calls it (it all-reduces the gradient of the residual stream once per branch).
     *
     * @param collector the open gradient collector
     * @param loss the scalar loss, computed from the head with history
     * @throws IllegalStateException if no head was marked
     */
    public void backward(GradientCollector collector, NDArray loss) {
        if (head == null) {
            throw new IllegalStateException(
                    "the forward pass marked no head; the model does not support segment-wise"
                            + " training");
        }
        collector.backward(loss);
        NDArray g = summed(head.getGradient());
        for (int i = branches.size() - 1; i >= 0; i--) {
            NDArray input = branches.get(i)[0];
            NDArray output = branches.get(i)[1];
            collector.backward(output.mul(g).sum()); // the output depends on the recorded input
            g = g.add(summed(input.getGradient()));
        }
        // One pass for what came before the branches, whose graphs may overlap (every layer's
        // prefix comes from one encoder). Every rank holds the stem's whole gradient: a 1/T share
        // each keeps the sum over ranks exact. The shared inputs are each rank's own part.
        NDArray rest = null;
        for (NDArray stem : stems) {
            rest = plus(rest, Scalars.div(stem.mul(g).sum(), group.getDegree()));
        }
        for (NDArray[] input : shared) {
            rest = plus(rest, input[0].mul(input[1].getGradient()).sum());
        }
        if (rest != null) {
            backwardIfRecorded(collector, rest);
        }
    }

    private static NDArray plus(NDArray sum, NDArray term) {
        return sum == null ? term : sum.add(term);
    }

    /**
     * Runs a backward pass from a scalar that may have no history (a frozen embedding's output).
     * DJL's {@code hasGradient()} answers only for tensors that record their own gradient, not for
     * results of recorded operations, so the engine is asked and its refusal of a scalar without
     * history is the answer.
     */
    private static void backwardIfRecorded(GradientCollector collector, NDArray scalar) {
        try {
            collector.backward(scalar);
        } catch (EngineException e) {
            if (e.getMessage() == null || !e.getMessage().contains("does not require grad")) {
                throw e;
            }
        }
    }

    private NDArray summed(NDArray share) {
        NDArray copy = NativeArrays.copyOf(share);
        group.getCommunicator().allReduceSum(copy);
        return copy;
    }

    private static NDArray leaf(NDArray values) {
        NDArray leaf = NativeArrays.copyOf(values.stopGradient());
        leaf.setRequiresGradient(true);
        return leaf;
    }
}
