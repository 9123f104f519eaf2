package org.peft4j.train;

/**
 * The learning rate by step: linear warmup from 0 to the peak over {@code warmup} steps, then
 * constant, linear decay to 0 at {@code total}, or cosine decay to 0 at {@code total}.
 */
public final class Schedule {

    /** The shape after warmup. */
    public enum Kind {
        /** Stays at the peak. */
        CONSTANT,
        /** Falls linearly to 0 at the last step. */
        LINEAR,
        /** Follows half a cosine to 0 at the last step. */
        COSINE
    }

    private final Kind kind;
    private final double peak;
    private final int warmup;
    private final int total;

    /**
     * Creates a schedule.
     *
     * @param kind the shape after warmup
     * @param peak the peak learning rate, &gt; 0
     * @param warmup warmup steps, &gt;= 0
     * @param total the number of steps of the run, &gt; 0
     */
    public Schedule(Kind kind, double peak, int warmup, int total) {
        if (!(peak > 0) || warmup < 0 || total <= 0) {
            throw new IllegalArgumentException(
                    "need learning rate > 0, warmup >= 0 and steps > 0; got "
                            + peak
                            + ", "
                            + warmup
                            + ", "
                            + total);
        }
        this.kind = kind;
        this.peak = peak;
        this.warmup = warmup;
        this.total = total;
    }

    /**
     * Returns the learning rate of a step.
     *
     * @param step the step, from 0
     * @return the rate
     */
    public double rate(int step) {
        if (step < warmup) {
            return peak * (step + 1) / warmup;
        }
        if (kind == Kind.CONSTANT || total <= warmup) {
            return peak;
        }
        double progress = Math.min(1.0, (double) (step - warmup) / (total - warmup));
        if (kind == Kind.LINEAR) {
            return peak * (1 - progress);
        }
        return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
}
