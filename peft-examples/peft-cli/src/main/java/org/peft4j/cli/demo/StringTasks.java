package org.peft4j.cli.demo;

import org.peft4j.train.data.Example;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The demo's synthetic tasks on six-letter words of mixed case: {@code "copy: aBcdEf >"} answers
 * {@code "aBcdEf"}, {@code "lower: aBcdEf >"} answers {@code "abcdef"} (the base model's
 * pretraining), and {@code "upper: aBcdEf >"} answers {@code "ABCDEF"} (what LoRA teaches it).
 */
public final class StringTasks {

    /** The letters of every word. */
    public static final int WORD = 6;

    private StringTasks() {}

    /** A task: an instruction word and how it maps the input. */
    public enum Task {
        /** Repeats the word. */
        COPY,
        /** Lower-cases the word. */
        LOWER,
        /** Upper-cases the word. */
        UPPER;

        String apply(String word) {
            switch (this) {
                case LOWER:
                    return word.toLowerCase(Locale.ROOT);
                case UPPER:
                    return word.toUpperCase(Locale.ROOT);
                default:
                    return word;
            }
        }
    }

    /**
     * Draws examples of some tasks.
     *
     * @param count the number of examples
     * @param seed the random seed
     * @param tasks the tasks, drawn in turn
     * @return the examples: source {@code "<task>: <word> >"}, target the answer
     */
    public static List<Example> examples(int count, long seed, Task... tasks) {
        Random random = new Random(seed);
        List<Example> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            Task task = tasks[i % tasks.length];
            String word = word(random);
            out.add(Example.of(prompt(task, word), task.apply(word)));
        }
        return out;
    }

    /**
     * Returns the prompt of a task.
     *
     * @param task the task
     * @param word the word
     * @return for example {@code "upper: aBcdEf >"}
     */
    public static String prompt(Task task, String word) {
        return task.name().toLowerCase(Locale.ROOT) + ": " + word + " >";
    }

    /** A word of mixed case with at least one lower- and one upper-case letter. */
    private static String word(Random random) {
        while (true) {
            StringBuilder word = new StringBuilder();
            for (int i = 0; i < WORD; i++) {
                char c = (char) ('a' + random.nextInt(26));
                word.append(random.nextBoolean() ? Character.toUpperCase(c) : c);
            }
            String w = word.toString();
            if (!w.equals(w.toLowerCase(Locale.ROOT)) && !w.equals(w.toUpperCase(Locale.ROOT))) {
                return w;
            }
        }
    }
}
