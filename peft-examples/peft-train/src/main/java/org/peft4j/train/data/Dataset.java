package org.peft4j.train.data;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * Tokenised examples in a shuffled order per epoch: epoch {@code e} is the order of {@code new
 * Random(seed + e)}, so a position (epoch, index) identifies the next example and a resumed run
 * sees the same data as an uninterrupted one.
 */
public final class Dataset {

    private final List<TokenizedExample> examples;
    private final long seed;

    /**
     * Creates a dataset.
     *
     * @param examples the examples, at least one
     * @param seed the shuffling seed
     */
    public Dataset(List<TokenizedExample> examples, long seed) {
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("the data set is empty");
        }
        this.examples = List.copyOf(examples);
        this.seed = seed;
    }

    /**
     * Returns the number of examples.
     *
     * @return the size
     */
    public int size() {
        return examples.size();
    }

    /**
     * Returns the examples in file order.
     *
     * @return an unmodifiable list
     */
    public List<TokenizedExample> examples() {
        return examples;
    }

    /**
     * Returns the order of an epoch.
     *
     * @param epoch the epoch, from 0
     * @return a permutation of {@code 0 .. size-1}
     */
    public List<Integer> order(int epoch) {
        List<Integer> order = new ArrayList<>(examples.size());
        for (int i = 0; i < examples.size(); i++) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(seed + epoch));
        return order;
    }

    /**
     * Returns the examples of a batch: {@code count} examples from position {@code index} of an
     * epoch's order (fewer at the end of the epoch).
     *
     * @param epoch the epoch
     * @param index the first position in the epoch's order
     * @param count the batch size
     * @return the examples
     */
    public List<TokenizedExample> slice(int epoch, int index, int count) {
        List<Integer> order = order(epoch);
        List<TokenizedExample> out = new ArrayList<>(count);
        for (int i = index; i < Math.min(index + count, order.size()); i++) {
            out.add(examples.get(order.get(i)));
        }
        return out;
    }
}
