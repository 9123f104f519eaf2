package org.peft4j.core.config;

/**
 * The value checks of config builders, shared so that every config fails the same way: an {@link
 * IllegalArgumentException} whose message names the field as its file writes it, the value found
 * and what would be accepted, e.g. {@code "r must be an integer > 0, got 0"}.
 */
public final class Checks {

    private Checks() {}

    /**
     * Throws unless a condition on a config's values holds.
     *
     * @param condition what every valid config satisfies
     * @param message what is wrong and how to fix it, for the user
     * @throws IllegalArgumentException with {@code message} if {@code condition} is false
     */
    public static void require(boolean condition, String message) {
        if (!condition) {
            throw new IllegalArgumentException(message);
        }
    }
}
