package org.peft4j.parallel.comm;

import ai.djl.ndarray.NDArray;

import org.peft4j.core.io.NativeArrays;

/**
 * The world of one process: every collective is the identity, so single-process code runs
 * unchanged, with no engine behind it.
 */
public final class SingleProcess implements Communicator {

    /** The one instance. */
    public static final SingleProcess INSTANCE = new SingleProcess();

    private SingleProcess() {}

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return 0;
    }

    /** {@inheritDoc} */
    @Override
    public int getWorldSize() {
        return 1;
    }

    /** {@inheritDoc} */
    @Override
    public void allReduceSum(NDArray array) {}

    /** {@inheritDoc} */
    @Override
    public NDArray allGather(NDArray array, int axis) {
        return NativeArrays.copyOf(array);
    }

    /** {@inheritDoc} */
    @Override
    public void broadcast(NDArray array, int root) {
        if (root != 0) {
            throw new IllegalArgumentException("root " + root + " outside a world of one rank");
        }
    }

    /** {@inheritDoc} */
    @Override
    public void barrier() {}

    /** {@inheritDoc} */
    @Override
    public Communicator split(int color, int key) {
        return this;
    }

    /** {@inheritDoc} */
    @Override
    public void close() {}
}
