package org.peft4j.train.data;

/**
 * What {@link ExampleEncoder} does with an example longer than its max length (which never exceeds
 * the model's context): every such example is counted and logged either way.
 */
public enum Overlong {

    /**
     * Cut it to the max length by the seed's rules (the default): the oldest rounds of a
     * conversation go first; one round keeps its source's BOS and end and its target's start.
     */
    TRUNCATE,

    /** Leave it out of the data, so that no example is trained or scored on a part of itself. */
    DROP
}
