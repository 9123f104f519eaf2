package org.peft4j.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Parameter;

import org.peft4j.core.parallel.Sharding;
import org.peft4j.parallel.comm.Communicator;

import java.util.Map;

/**
 * Makes the trainable gradients of every rank the gradients of the single-process run: after a
 * {@link BranchTape} backward pass, a parameter held whole on every rank of a tensor-parallel group
 * has that rank's share of its gradient, so the shares are summed over the group; then every
 * gradient is summed over the data-parallel group (each rank's loss being already divided by the
 * global number of target tokens, the sum is the gradient of the global mean).
 */
public final class ParallelGradients {

    private ParallelGradients() {}

    /**
     * Reduces the gradients in place. Every rank calls it with the same parameters in the same
     * order.
     *
     * @param trainable the trainable parameters by name, in the same order on every rank
     * @param shardings the sharding of each split parameter; whole ones are absent
     * @param layout the groups
     */
    public static void reduce(
            Map<String, Parameter> trainable, Map<String, Sharding> shardings, Parallelism layout) {
        Communicator tp = layout.getTensorParallel().getCommunicator();
        Communicator dp = layout.getDataParallel();
        for (Map.Entry<String, Parameter> entry : trainable.entrySet()) {
            NDArray w = entry.getValue().getArray();
            if (!w.hasGradient()) {
                continue;
            }
            try (NDArray g = w.getGradient()) {
                if (tp.getWorldSize() > 1 && !shardings.containsKey(entry.getKey())) {
                    tp.allReduceSum(g);
                }
                if (dp.getWorldSize() > 1) {
                    dp.allReduceSum(g);
                }
            }
        }
    }

    /**
     * Returns the L2 norm of the single-process gradient: split parameters contribute every rank's
     * part, whole ones once.
     *
     * @param trainable the trainable parameters, their gradients already reduced
     * @param shardings the sharding of each split parameter
     * @param layout the groups
     * @return {@code sqrt(sum of g^2)} over the whole model
     */
    public static double norm(
            Map<String, Parameter> trainable, Map<String, Sharding> shardings, Parallelism layout) {
        double split = 0;
        double whole = 0;
        for (Map.Entry<String, Parameter> entry : trainable.entrySet()) {
            NDArray w = entry.getValue().getArray();
            if (!w.hasGradient()) {
                continue;
            }
            try (NDArray g = w.getGradient();
                    NDArray squared = g.square();
                    NDArray total = squared.sum()) {
                if (shardings.containsKey(entry.getKey())) {
                    split += total.getFloat();
                } else {
                    whole += total.getFloat();
                }
            }
        }
        return Math.sqrt(layout.getTensorParallel().getCommunicator().sum(split) + whole);
    }
}
