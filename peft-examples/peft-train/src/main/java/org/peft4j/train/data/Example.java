package org.peft4j.train.data;

import java.util.List;

/**
 * One training example: a conversation of rounds, each a source (the prompt, not learned) and a
 * target (the answer, learned).
 *
 * @param sources the source of each round
 * @param targets the target of each round, as many as sources
 */
public record Example(List<String> sources, List<String> targets) {

    /**
     * Checks the rounds.
     *
     * @param sources the source of each round
     * @param targets the target of each round
     * @throws IllegalArgumentException if the counts differ or there are none
     */
    public Example {
        if (sources.isEmpty() || sources.size() != targets.size()) {
            throw new IllegalArgumentException(
                    "an example needs as many sources as targets, at least one; got "
                            + sources.size()
                            + " and "
                            + targets.size());
        }
        sources = List.copyOf(sources);
        targets = List.copyOf(targets);
    }

    /**
     * Creates a single-round example.
     *
     * @param source the prompt
     * @param target the answer
     * @return the example
     */
    public static Example of(String source, String target) {
        return new Example(List.of(source), List.of(target));
    }
}
