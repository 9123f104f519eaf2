package org.peft4j.models.tokenizer;

/**
 * The tokens of a text with where each comes from in it: token {@code i} covers the characters
 * {@code [starts[i], ends[i])} of the Java string (UTF-16 indices). Several tokens may share a
 * character (the bytes of one emoji); a token added by the tokenizer rather than read from the
 * text (none are, here) would have an empty span.
 *
 * @param ids the token ids
 * @param starts the first character of each token
 * @param ends the character after each token
 */
public record TokenSpans(int[] ids, int[] starts, int[] ends) {

    /**
     * Checks that the arrays are aligned.
     *
     * @param ids the token ids
     * @param starts the first character of each token
     * @param ends the character after each token
     * @throws IllegalArgumentException if the lengths differ
     */
    public TokenSpans {
        if (starts.length != ids.length || ends.length != ids.length) {
            throw new IllegalArgumentException(
                    "ids, starts and ends differ in length: "
                            + ids.length
                            + ", "
                            + starts.length
                            + ", "
                            + ends.length);
        }
    }
}
