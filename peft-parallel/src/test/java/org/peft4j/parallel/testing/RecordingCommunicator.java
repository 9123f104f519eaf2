package org.peft4j.parallel.testing;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;

import org.peft4j.parallel.comm.Communicator;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.List;

/**
 * One rank of a pretend group whose ranks all live in this process, run one after the other: it
 * records every collective it is asked for, so a test can see which code communicates and when.
 *
 * <p>A broadcast behaves as across real ranks when the root's rank runs its code first: the root's
 * call leaves a copy of its float32 array with the group, and another rank's matching call copies
 * it in. A sum leaves the array as it is, a gather repeats this rank's part; splitting is refused.
 */
public final class RecordingCommunicator implements Communicator {

    private final int rank;
    private final int size;
    private final Deque<float[]> sent;
    private final List<String> calls = new ArrayList<>();

    private RecordingCommunicator(int rank, int size, Deque<float[]> sent) {
        this.rank = rank;
        this.size = size;
        this.sent = sent;
    }

    /**
     * Creates the ranks of a group that share their broadcasts.
     *
     * @param size the number of ranks, at least 2
     * @return the communicator of each rank, by rank
     */
    public static RecordingCommunicator[] group(int size) {
        Deque<float[]> sent = new ArrayDeque<>();
        RecordingCommunicator[] ranks = new RecordingCommunicator[size];
        for (int k = 0; k < size; k++) {
            ranks[k] = new RecordingCommunicator(k, size, sent);
        }
        return ranks;
    }

    /**
     * Returns the collectives called so far, oldest first, as {@code "broadcast (4, 8) from 0"},
     * {@code "allReduceSum (3)"}, {@code "allGather (2, 3) on 1"} or {@code "barrier"}.
     *
     * @return an unmodifiable view
     */
    public List<String> calls() {
        return Collections.unmodifiableList(calls);
    }

    /** Forgets the collectives recorded so far. */
    public void clear() {
        calls.clear();
    }

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return rank;
    }

    /** {@inheritDoc} */
    @Override
    public int getWorldSize() {
        return size;
    }

    /** {@inheritDoc} */
    @Override
    public void allReduceSum(NDArray array) {
        calls.add("allReduceSum " + shape(array));
    }

    /** {@inheritDoc} */
    @Override
    public NDArray allGather(NDArray array, int axis) {
        calls.add("allGather " + shape(array) + " on " + axis);
        NDList parts = new NDList(size);
        for (int k = 0; k < size; k++) {
            parts.add(array);
        }
        return NDArrays.concat(parts, axis);
    }

    /** {@inheritDoc} */
    @Override
    public void broadcast(NDArray array, int root) {
        calls.add("broadcast " + shape(array) + " from " + root);
        if (rank == root) {
            sent.addLast(array.toFloatArray());
        } else if (sent.isEmpty()) {
            throw new IllegalStateException("rank " + rank + " broadcasts before the root did");
        } else {
            array.set(sent.removeFirst());
        }
    }

    /** {@inheritDoc} */
    @Override
    public void barrier() {
        calls.add("barrier");
    }

    /** {@inheritDoc} */
    @Override
    public Communicator split(int color, int key) {
        throw new UnsupportedOperationException("a recording communicator does not split");
    }

    /** {@inheritDoc} */
    @Override
    public void close() {}

    private static String shape(NDArray array) {
        return array.getShape().toString();
    }
}
