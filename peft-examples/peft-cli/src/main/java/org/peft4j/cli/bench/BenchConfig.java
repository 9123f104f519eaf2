package org.peft4j.cli.bench;

import org.peft4j.models.llama.LlamaConfig;

import java.util.Arrays;
import java.util.Locale;

/** The benchmark configurations: the two the numbers are reported for, and a quick check. */
public enum BenchConfig {
    /** Hidden 512, intermediate 1376, 8 layers, 8 heads, 4 kv heads, vocab 8192, tied; 4 x 256. */
    SMALL(
            LlamaConfig.builder().setSizes(512, 1376, 8, 8, 4, 8192).optTieWordEmbeddings(true),
            4,
            256),
    /** Hidden 1024, intermediate 2816, 12 layers, 16 heads, 8 kv heads, vocab 32000; 1 x 128. */
    MEDIUM(LlamaConfig.builder().setSizes(1024, 2816, 12, 16, 8, 32000), 1, 128),
    /**
     * Hidden 64, intermediate 176, 2 layers, 4 heads, 2 kv heads, vocab 512, tied; 2 x 32: runs
     * every mode in seconds, to check that the benchmark works, not to measure anything.
     */
    TINY(LlamaConfig.builder().setSizes(64, 176, 2, 4, 2, 512).optTieWordEmbeddings(true), 2, 32);

    private final LlamaConfig llama;
    private final int batch;
    private final int sequence;

    BenchConfig(LlamaConfig.Builder llama, int batch, int sequence) {
        this.llama = llama.optMaxPositionEmbeddings(2048).build();
        this.batch = batch;
        this.sequence = sequence;
    }

    /**
     * Looks a configuration up by name, in any case.
     *
     * @param name {@code small}, {@code medium} or {@code tiny}
     * @return the configuration
     * @throws IllegalArgumentException naming the configurations if there is none of that name
     */
    public static BenchConfig of(String name) {
        for (BenchConfig each : values()) {
            if (each.name().equalsIgnoreCase(name)) {
                return each;
            }
        }
        throw new IllegalArgumentException(
                "no benchmark configuration \""
                        + name
                        + "\"; choose one of "
                        + Arrays.toString(values()).toLowerCase(Locale.ROOT));
    }

    /**
     * Returns the model's architecture.
     *
     * @return the Llama config
     */
    public LlamaConfig llama() {
        return llama;
    }

    /**
     * Returns the rows of a step.
     *
     * @return the batch size
     */
    public int batch() {
        return batch;
    }

    /**
     * Returns the tokens of each row.
     *
     * @return the sequence length
     */
    public int sequence() {
        return sequence;
    }
}
