package org.peft4j.lora;

/**
 * How {@code A: [r, in]} and {@code B: [out, r]} start: Hugging Face's {@code init_lora_weights}.
 */
public enum LoRAInit {
    /**
     * {@code A} Kaiming-uniform with {@code a = sqrt(5)}, that is uniform on {@code [-1/sqrt(in),
     * 1/sqrt(in)]}, and {@code B = 0}: the adapter starts as a no-op ({@code true}).
     */
    KAIMING_UNIFORM,
    /** {@code A} normal with standard deviation {@code 1/r}, {@code B = 0} ({@code "gaussian"}). */
    GAUSSIAN,
    /**
     * Both random, {@code A} uniform on {@code [-1/sqrt(in), 1/sqrt(in)]} and {@code B} on {@code
     * [-1/sqrt(r), 1/sqrt(r)]}: the adapter changes the output from the start, for tests and
     * debugging ({@code false}).
     */
    RANDOM
}
