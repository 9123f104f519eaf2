package org.peft4j.core.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.initializer.Initializer;

/**
 * How a parameter held by one rank of a tensor-parallel group relates to the tensor of the same
 * parameter in the single-process model: for example rows {@code [rank * O/T, (rank + 1) * O/T)} of
 * an {@code [O, I]} weight. A replicated parameter has no sharding.
 */
public interface Sharding {

    /**
     * Returns the number of ranks the tensor is split across.
     *
     * @return the tensor-parallel degree {@code T >= 1}
     */
    int getDegree();

    /**
     * Returns this rank's index in the group.
     *
     * @return a number in {@code [0, T)}
     */
    int getRank();

    /**
     * Returns the shape of the single-process tensor of which a local tensor is this rank's part.
     *
     * @param local the local shape
     * @return the full shape
     */
    Shape fullShape(Shape local);

    /**
     * Cuts this rank's part out of the single-process tensor.
     *
     * @param full the full tensor
     * @return a new array attached to {@code full}'s manager
     * @throws IllegalArgumentException if the tensor cannot be split evenly along the sharded axis
     */
    NDArray localPart(NDArray full);

    /**
     * Reassembles the single-process tensor from every rank's part. A collective: every rank of the
     * group calls it, in the same order, with parts of the same shape.
     *
     * @param local this rank's part
     * @return the full tensor, a new array attached to {@code local}'s manager
     */
    NDArray gather(NDArray local);

    /** Waits until every rank of the group has called it (so that a file one rank wrote exists). */
    void barrier();

    /**
     * Returns an initializer that draws the single-process tensor with {@code whole} and keeps this
     * rank's part. A split parameter then starts from the values one process draws with the same
     * seed (every rank draws the same numbers, and as many as one process does), and initialisers
     * that scale by fan-in or fan-out see the full layer's.
     *
     * @param whole the single-process initialiser
     * @return an initialiser of this rank's part
     */
    default Initializer drawWholeKeepPart(Initializer whole) {
        return (manager, local, type) -> {
            try (NDArray full = whole.initialize(manager, fullShape(local), type)) {
                return localPart(full);
            }
        };
    }
}
