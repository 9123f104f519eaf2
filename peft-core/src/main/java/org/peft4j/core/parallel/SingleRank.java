package org.peft4j.core.parallel;

import ai.djl.ndarray.NDArray;

import org.peft4j.core.io.NativeArrays;

/** The {@link ShardGroup} of one process. */
final class SingleRank implements ShardGroup {

    static final SingleRank INSTANCE = new SingleRank();

    private SingleRank() {}

    @Override
    public int getDegree() {
        return 1;
    }

    @Override
    public int getRank() {
        return 0;
    }

    @Override
    public NDArray allGather(NDArray local, int axis) {
        return NativeArrays.copyOf(local);
    }

    @Override
    public void barrier() {}
}
