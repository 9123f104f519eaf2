package org.peft4j.train.data;

/**
 * An example as token ids, with labels aligned to them: a label is the token itself where it is
 * learned (targets and their EOS) and {@code -100} where it is not (sources).
 *
 * @param inputIds the tokens
 * @param labels the labels, as long as {@code inputIds}
 */
public record TokenizedExample(int[] inputIds, int[] labels) {

    /**
     * Checks the lengths.
     *
     * @param inputIds the tokens
     * @param labels the labels
     * @throws IllegalArgumentException if the lengths differ
     */
    public TokenizedExample {
        if (inputIds.length != labels.length) {
            throw new IllegalArgumentException(
                    "inputIds and labels differ in length: "
                            + inputIds.length
                            + " and "
                            + labels.length);
        }
    }

    /**
     * Counts the learned tokens.
     *
     * @return the labels that are not {@code -100}
     */
    public int countTargets() {
        int count = 0;
        for (int label : labels) {
            if (label >= 0) {
                count++;
            }
        }
        return count;
    }
}
