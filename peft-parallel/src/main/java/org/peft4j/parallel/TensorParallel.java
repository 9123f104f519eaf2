package org.peft4j.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;

import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.parallel.comm.Communicator;
import org.peft4j.parallel.comm.SingleProcess;

/**
 * A tensor-parallel group: the ranks among which layers are split, degree {@code T} = the group's
 * size. Its collectives take part in training: in a recorded forward pass their result carries the
 * gradient back to this rank's input, as the Megatron operators do (an all-reduce passes the
 * output's gradient to each partial sum; an all-gather passes each rank the slice of its part).
 */
public final class TensorParallel implements ShardGroup {

    private static final TensorParallel SINGLE = new TensorParallel(SingleProcess.INSTANCE);

    private final Communicator group;

    private TensorParallel(Communicator group) {
        this.group = group;
    }

    /**
     * Returns the group of the ranks of a communicator.
     *
     * @param group the communicator of the tensor-parallel group (the world's, or a sub-group's)
     * @return the group
     */
    public static TensorParallel of(Communicator group) {
        return group.getWorldSize() == 1 ? SINGLE : new TensorParallel(group);
    }

    /**
     * Returns the group of one process, in which nothing is split.
     *
     * @return the group of degree 1
     */
    public static TensorParallel single() {
        return SINGLE;
    }

    /**
     * Returns the number of ranks layers are split across.
     *
     * @return {@code T >= 1}
     */
    @Override
    public int getDegree() {
        return group.getWorldSize();
    }

    /**
     * Returns this process's rank in the group.
     *
     * @return a number in {@code [0, T)}
     */
    @Override
    public int getRank() {
        return group.getRank();
    }

    /**
     * Returns the group's communicator.
     *
     * @return the communicator
     */
    public Communicator getCommunicator() {
        return group;
    }

    /**
     * Returns one rank's share of a dimension.
     *
     * @param total the full dimension
     * @param what what the dimension is, for the message (for example {@code
     *     "num_attention_heads"})
     * @return {@code total / T}
     * @throws IllegalArgumentException if {@code T} does not divide {@code total}
     */
    public long part(long total, String what) {
        int degree = getDegree();
        if (total % degree != 0) {
            throw new IllegalArgumentException(
                    what
                            + " = "
                            + total
                            + " cannot be split evenly across tensor_parallel_degree "
                            + degree
                            + "; choose a degree that divides it");
        }
        return total / degree;
    }

    /**
     * Sums every rank's partial result: {@code y = sum over ranks of partial}. In a recorded
     * forward pass, {@code dL/dpartial = dL/dy} on each rank.
     *
     * @param partial this rank's partial sum
     * @param training whether the forward pass may be recorded for a backward pass
     * @return the sum, a new array
     */
    public NDArray allReduce(NDArray partial, boolean training) {
        if (getDegree() == 1) {
            return partial;
        }
        NDArray sum = NativeArrays.copyOf(partial.stopGradient());
        group.allReduceSum(sum);
        if (!training) {
            return sum;
        }
        // value: the sum; gradient: through partial alone (the other ranks' parts are constants)
        return partial.add(sum.sub(partial).stopGradient());
    }

    /**
     * Concatenates every rank's part along an axis, in rank order. In a recorded forward pass, this
     * rank's part receives its slice of the result's gradient.
     *
     * @param local this rank's part
     * @param axis the axis
     * @param training whether the forward pass may be recorded for a backward pass
     * @return the concatenation, a new array
     */
    public NDArray allGather(NDArray local, int axis, boolean training) {
        if (getDegree() == 1) {
            return local;
        }
        int dim = axis < 0 ? axis + local.getShape().dimension() : axis;
        NDArray gathered = group.allGather(local.stopGradient(), dim);
        if (!training) {
            return gathered;
        }
        NDList parts = gathered.split(getDegree(), dim);
        parts.set(getRank(), local);
        return NDArrays.concat(parts, dim);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Outside autograd: for saving, loading and tests.
     */
    @Override
    public NDArray allGather(NDArray local, int axis) {
        return group.allGather(local, axis);
    }

    /** {@inheritDoc} */
    @Override
    public void barrier() {
        group.barrier();
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "TensorParallel(rank " + getRank() + " of " + getDegree() + ')';
    }
}
