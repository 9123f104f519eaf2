package org.peft4j.lora;

import org.peft4j.core.AdapterNames;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which adapter each row of a batch uses, for a mixed-adapter forward pass (Hugging Face PEFT's
 * {@code adapter_names}): row {@code i} of every adapted layer's input ({@code [B, ...]}, rows
 * along axis 0) gets the branch of adapter {@code names[i]} only, or none for {@link
 * AdapterNames#BASE}.
 *
 * <p>The rows are grouped by adapter once, here: a layer computes each group's rows together
 * (one base product and one branch per group), not one full pass per adapter.
 */
public final class AdapterRows {

    private final List<String> names;
    private final Map<String, long[]> groups;
    private final long[] order;
    private final boolean inOrder;

    /**
     * Groups the rows of a batch by adapter.
     *
     * @param names one adapter name per row, {@link AdapterNames#BASE} for the base model
     * @throws IllegalArgumentException if the list is empty or holds a null
     */
    public AdapterRows(List<String> names) {
        if (names.isEmpty()) {
            throw new IllegalArgumentException("a mixed batch needs one adapter name per row");
        }
        Map<String, List<Long>> byName = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            String name = names.get(i);
            if (name == null) {
                throw new IllegalArgumentException(
                        "row "
                                + i
                                + " has no adapter name; use "
                                + AdapterNames.BASE
                                + " for the base model");
            }
            byName.computeIfAbsent(name, k -> new ArrayList<>()).add((long) i);
        }
        Map<String, long[]> grouped = new LinkedHashMap<>();
        long[] concatenated = new long[names.size()];
        int k = 0;
        for (Map.Entry<String, List<Long>> entry : byName.entrySet()) {
            long[] rows = entry.getValue().stream().mapToLong(Long::longValue).toArray();
            grouped.put(entry.getKey(), rows);
            for (long row : rows) {
                concatenated[k++] = row;
            }
        }
        this.names = List.copyOf(names);
        this.groups = Collections.unmodifiableMap(grouped);
        this.order = inverse(concatenated);
        boolean sorted = true;
        for (int i = 0; i < concatenated.length; i++) {
            sorted &= concatenated[i] == i;
        }
        this.inOrder = sorted;
    }

    /** Position of each row in the groups' concatenation: {@code inverse[perm[k]] = k}. */
    private static long[] inverse(long[] permutation) {
        long[] inverse = new long[permutation.length];
        for (int k = 0; k < permutation.length; k++) {
            inverse[(int) permutation[k]] = k;
        }
        return inverse;
    }

    /**
     * Returns the adapter name of each row.
     *
     * @return an unmodifiable list of {@link #getBatchSize()} names
     */
    public List<String> getNames() {
        return names;
    }

    /**
     * Returns the number of rows.
     *
     * @return {@code B}
     */
    public int getBatchSize() {
        return names.size();
    }

    /**
     * Returns the rows of each adapter, in the order the adapters first appear.
     *
     * @return an unmodifiable map from adapter name to ascending row indices
     */
    public Map<String, long[]> getGroups() {
        return groups;
    }

    /**
     * Returns whether the groups' rows, concatenated, are the batch in order: each adapter's rows
     * are one run of consecutive rows, the runs in the order of first appearance (a batch sorted
     * by adapter, as a server can send it). Each group is then a slice of the batch, and putting
     * the rows back in order is nothing to do.
     *
     * @return whether the batch is grouped already
     */
    public boolean isGrouped() {
        return inOrder;
    }

    /**
     * Returns, for each row, its position in the concatenation of the groups' rows: gathering the
     * concatenated per-group results at these positions restores the batch order.
     *
     * @return {@code B} positions
     */
    public long[] getRestoringOrder() {
        return order.clone();
    }
}
