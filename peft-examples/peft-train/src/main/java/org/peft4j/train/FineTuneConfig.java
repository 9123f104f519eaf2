package org.peft4j.train;

import static org.peft4j.core.config.Checks.require;

/**
 * The settings of a fine-tuning run. Immutable; built with {@link #builder()}.
 *
 * <p>A step is one optimizer update over {@code batchSize * gradientAccumulationSteps} examples.
 * The run lasts {@code maxSteps} steps when that is set, otherwise {@code epochs} passes over the
 * data.
 */
public final class FineTuneConfig {

    private final double learningRate;
    private final int epochs;
    private final int maxSteps;
    private final int batchSize;
    private final int gradientAccumulationSteps;
    private final int warmupSteps;
    private final Schedule.Kind schedule;
    private final double maxGradNorm;
    private final double weightDecay;
    private final double adamEpsilon;
    private final int evalSteps;
    private final int saveSteps;
    private final int saveTotalLimit;
    private final int loggingSteps;
    private final long seed;

    private FineTuneConfig(Builder b) {
        require(b.learningRate > 0, "learning rate must be > 0, got " + b.learningRate);
        require(b.epochs > 0 || b.maxSteps > 0, "set epochs > 0 or max steps > 0");
        require(b.batchSize > 0, "batch size must be > 0, got " + b.batchSize);
        require(b.gradientAccumulationSteps > 0, "gradient accumulation steps must be > 0");
        require(b.warmupSteps >= 0, "warmup steps must be >= 0, got " + b.warmupSteps);
        require(b.maxGradNorm >= 0, "max grad norm must be >= 0 (0: no clipping)");
        require(b.weightDecay >= 0, "weight decay must be >= 0, got " + b.weightDecay);
        require(b.saveTotalLimit > 0, "save total limit must be > 0");
        require(b.adamEpsilon > 0, "AdamW epsilon must be > 0, got " + b.adamEpsilon);
        this.learningRate = b.learningRate;
        this.epochs = b.epochs;
        this.maxSteps = b.maxSteps;
        this.batchSize = b.batchSize;
        this.gradientAccumulationSteps = b.gradientAccumulationSteps;
        this.warmupSteps = b.warmupSteps;
        this.schedule = b.schedule;
        this.maxGradNorm = b.maxGradNorm;
        this.weightDecay = b.weightDecay;
        this.adamEpsilon = b.adamEpsilon;
        this.evalSteps = b.evalSteps;
        this.saveSteps = b.saveSteps;
        this.saveTotalLimit = b.saveTotalLimit;
        this.loggingSteps = Math.max(1, b.loggingSteps);
        this.seed = b.seed;
    }

    /**
     * Creates a builder with the defaults: learning rate 3e-4, 1 epoch, batch 8, no accumulation,
     * no warmup, linear decay, clipping at 1.0, no weight decay, seed 42.
     *
     * @return a builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the number of steps the run lasts for a data set.
     *
     * @param examples the number of training examples
     * @return {@code maxSteps}, or {@code epochs * stepsPerEpoch}
     */
    public int totalSteps(int examples) {
        return maxSteps > 0 ? maxSteps : epochs * stepsPerEpoch(examples);
    }

    /**
     * Returns the number of steps of one pass over the data.
     *
     * @param examples the number of training examples
     * @return {@code ceil(examples / (batch * accumulation))}
     */
    public int stepsPerEpoch(int examples) {
        int perStep = batchSize * gradientAccumulationSteps;
        return (examples + perStep - 1) / perStep;
    }

    /**
     * Returns the peak learning rate.
     *
     * @return the rate
     */
    public double getLearningRate() {
        return learningRate;
    }

    /**
     * Returns the micro-batch size.
     *
     * @return examples per forward pass
     */
    public int getBatchSize() {
        return batchSize;
    }

    /**
     * Returns the number of micro-batches per step.
     *
     * @return the accumulation steps
     */
    public int getGradientAccumulationSteps() {
        return gradientAccumulationSteps;
    }

    /**
     * Returns the warmup length.
     *
     * @return warmup steps
     */
    public int getWarmupSteps() {
        return warmupSteps;
    }

    /**
     * Returns the decay after warmup.
     *
     * @return the schedule's shape
     */
    public Schedule.Kind getSchedule() {
        return schedule;
    }

    /**
     * Returns the global gradient norm above which gradients are scaled down.
     *
     * @return the norm; 0 for no clipping
     */
    public double getMaxGradNorm() {
        return maxGradNorm;
    }

    /**
     * Returns AdamW's decoupled weight decay.
     *
     * @return the decay
     */
    public double getWeightDecay() {
        return weightDecay;
    }

    /**
     * Returns AdamW's epsilon, added to the denominator.
     *
     * @return epsilon
     */
    public double getAdamEpsilon() {
        return adamEpsilon;
    }

    /**
     * Returns how often the dev set is evaluated.
     *
     * @return steps between evaluations; 0 for only at the end
     */
    public int getEvalSteps() {
        return evalSteps;
    }

    /**
     * Returns how often a checkpoint is written.
     *
     * @return steps between checkpoints; 0 for none
     */
    public int getSaveSteps() {
        return saveSteps;
    }

    /**
     * Returns how many checkpoints are kept.
     *
     * @return the newest ones kept
     */
    public int getSaveTotalLimit() {
        return saveTotalLimit;
    }

    /**
     * Returns how often metrics are logged.
     *
     * @return steps between log lines
     */
    public int getLoggingSteps() {
        return loggingSteps;
    }

    /**
     * Returns the seed of shuffling and dropout.
     *
     * @return the seed
     */
    public long getSeed() {
        return seed;
    }

    /** The builder of {@link FineTuneConfig}; every setting is optional. */
    public static final class Builder {

        double learningRate = 3e-4;
        int epochs = 1;
        int maxSteps;
        int batchSize = 8;
        int gradientAccumulationSteps = 1;
        int warmupSteps;
        Schedule.Kind schedule = Schedule.Kind.LINEAR;
        double maxGradNorm = 1.0;
        double weightDecay;
        double adamEpsilon = 1e-8;
        int evalSteps;
        int saveSteps;
        int saveTotalLimit = 2;
        int loggingSteps = 10;
        long seed = 42;

        Builder() {}

        /**
         * Sets the peak learning rate.
         *
         * @param rate &gt; 0; default 3e-4
         * @return this builder
         */
        public Builder optLearningRate(double rate) {
            this.learningRate = rate;
            return this;
        }

        /**
         * Sets the number of passes over the data (used when max steps is not set).
         *
         * @param epochs &gt; 0; default 1
         * @return this builder
         */
        public Builder optEpochs(int epochs) {
            this.epochs = epochs;
            return this;
        }

        /**
         * Sets the number of steps, overriding epochs.
         *
         * @param steps &gt; 0, or 0 (default) to use epochs
         * @return this builder
         */
        public Builder optMaxSteps(int steps) {
            this.maxSteps = steps;
            return this;
        }

        /**
         * Sets the micro-batch size.
         *
         * @param size &gt; 0; default 8
         * @return this builder
         */
        public Builder optBatchSize(int size) {
            this.batchSize = size;
            return this;
        }

        /**
         * Sets gradient accumulation.
         *
         * @param steps micro-batches per update, &gt; 0; default 1
         * @return this builder
         */
        public Builder optGradientAccumulationSteps(int steps) {
            this.gradientAccumulationSteps = steps;
            return this;
        }

        /**
         * Sets warmup.
         *
         * @param steps warmup steps; default 0
         * @return this builder
         */
        public Builder optWarmupSteps(int steps) {
            this.warmupSteps = steps;
            return this;
        }

        /**
         * Sets the decay after warmup.
         *
         * @param kind the shape; default linear
         * @return this builder
         */
        public Builder optSchedule(Schedule.Kind kind) {
            this.schedule = kind;
            return this;
        }

        /**
         * Sets global-norm gradient clipping.
         *
         * @param norm the largest norm; 0 for none; default 1.0
         * @return this builder
         */
        public Builder optMaxGradNorm(double norm) {
            this.maxGradNorm = norm;
            return this;
        }

        /**
         * Sets AdamW's weight decay.
         *
         * @param decay &gt;= 0; default 0
         * @return this builder
         */
        public Builder optWeightDecay(double decay) {
            this.weightDecay = decay;
            return this;
        }

        /**
         * Sets AdamW's epsilon.
         *
         * @param epsilon &gt; 0; default 1e-8
         * @return this builder
         */
        public Builder optAdamEpsilon(double epsilon) {
            this.adamEpsilon = epsilon;
            return this;
        }

        /**
         * Sets how often the dev set is evaluated.
         *
         * @param steps steps between evaluations; 0 (default) for only at the end
         * @return this builder
         */
        public Builder optEvalSteps(int steps) {
            this.evalSteps = steps;
            return this;
        }

        /**
         * Sets how often checkpoints are written.
         *
         * @param steps steps between checkpoints; 0 (default) for none
         * @return this builder
         */
        public Builder optSaveSteps(int steps) {
            this.saveSteps = steps;
            return this;
        }

        /**
         * Sets how many checkpoints are kept.
         *
         * @param limit the newest ones kept; default 2
         * @return this builder
         */
        public Builder optSaveTotalLimit(int limit) {
            this.saveTotalLimit = limit;
            return this;
        }

        /**
         * Sets how often metrics are logged.
         *
         * @param steps steps between log lines; default 10
         * @return this builder
         */
        public Builder optLoggingSteps(int steps) {
            this.loggingSteps = steps;
            return this;
        }

        /**
         * Sets the seed of shuffling and dropout.
         *
         * @param seed the seed; default 42
         * @return this builder
         */
        public Builder optSeed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Validates and builds the config.
         *
         * @return the config
         * @throws IllegalArgumentException naming the invalid setting
         */
        public FineTuneConfig build() {
            return new FineTuneConfig(this);
        }
    }
}
