package org.peft4j.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.training.initializer.UniformInitializer;
import ai.djl.util.PairList;

import org.peft4j.core.Scalars;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.parallel.Sharding;

import java.util.List;

/**
 * A {@link Linear} layer with a low-rank adapter:
 *
 * <pre>
 *   y = x W^T + b + s * (dropout(x) A^T) B^T
 *   x: [..., in]   W: [out, in]   b: [out]   A: [r, in]   B: [out, r]   y: [..., out]
 * </pre>
 *
 * <p>It takes over the wrapped layer's {@code weight} and {@code bias} {@link Parameter} objects
 * (no copy: merging into {@code W} changes the original layer's weight), and adds the parameters
 * {@code lora_A} and {@code lora_B}. Being a {@code Linear} itself, it fits the typed {@code
 * Linear} fields through which DJL's composites call their children.
 *
 * <p>{@code B A} is never materialised in the forward pass. {@link #merge()} adds {@code s B A} to
 * {@code W} and the forward pass then skips the branch; {@link #unmerge()} subtracts it again,
 * which restores {@code W} to within float rounding. A merged layer refuses to run in training
 * mode, because {@code A} and {@code B} would get no gradient.
 */
public class LoRALinear extends Linear {

    private final Linear baseLayer;
    private final String path;
    private final Parameter weight;
    private final Parameter bias;
    private final Parameter loraA;
    private final Parameter loraB;
    private final int r;
    private final double scaling;
    private final float dropout;
    private final DataType dtype;
    private final long outFeatures;
    private boolean merged;
    private boolean enabled = true;

    /**
     * Wraps the layer given to the builder, all of whose adapter this process holds.
     *
     * @param builder the builder
     */
    protected LoRALinear(Builder builder) {
        this(builder, units(builder.base), null, null);
    }

    /**
     * Wraps the layer given to the builder, which may be one rank's part of a layer split across
     * processes: its weight then has {@code outFeatures} rows (a column-parallel layer's output may
     * be gathered to more features than that), and {@code A} or {@code B} may be cut from the full
     * layer's. A split matrix is drawn whole, as one process draws it, and cut ({@link
     * Sharding#drawWholeKeepPart}): a split model starts from the adapter a single process draws
     * from the same seed, and Kaiming's fan-in is the full layer's.
     *
     * <p>The shardings are values, known from the wrapped layer before this constructor runs, and
     * the constructor calls no method a subclass could override: it only declares the parameters.
     * {@link #initializeAdapterFromBase()} creates them after construction.
     *
     * @param builder the builder
     * @param outFeatures the rows of the wrapped weight, and of {@code B}
     * @param shardingOfA how this layer's {@code A: [r, in]} is cut from the full layer's, or null
     *     when it holds all of it
     * @param shardingOfB how this layer's {@code B: [outFeatures, r]} is cut from the full layer's,
     *     or null when it holds all of it
     */
    protected LoRALinear(
            Builder builder, long outFeatures, Sharding shardingOfA, Sharding shardingOfB) {
        super(Linear.builder().setUnits(outFeatures).optBias(hasBias(builder.base)));
        this.baseLayer = builder.base;
        this.path = builder.path;
        this.r = builder.r;
        this.scaling = builder.scaling;
        this.dropout = (float) builder.dropout;
        this.dtype = builder.dtype;
        this.outFeatures = outFeatures;
        this.weight = builder.base.getParameters().get("weight");
        this.bias = builder.base.getParameters().get("bias");
        parameters.clear();
        parameters.put("weight", weight);
        if (bias != null) {
            parameters.put("bias", bias);
        }
        this.loraA =
                addParameter(
                        adapterParameter("lora_A", initializerA(builder.init, r, shardingOfA)));
        this.loraB =
                addParameter(
                        adapterParameter("lora_B", initializerB(builder.init, r, shardingOfB)));
    }

    /**
     * Creates {@code A} and {@code B} at once, on the wrapped weight's manager, when that weight
     * already exists (a loaded model), so that the layer runs without {@link #initialize}; a layer
     * whose weight is not set yet gets them from {@code initialize} instead. Whoever constructs the
     * layer calls this right after the constructor: {@link Builder#build()}, or the {@link
     * AdaptableLinear#adapt} of a layer that builds its own kind. Drawing {@code A} and {@code B}
     * there rather than in the constructor keeps the constructor free of calls into a subclass
     * whose fields are not yet set.
     */
    protected final void initializeAdapterFromBase() {
        if (!weight.isInitialized()) {
            return;
        }
        long inFeatures = weight.getArray().getShape().get(1);
        if (baseLayer.isInitialized()) {
            beforeInitialize(baseLayer.getInputShapes());
        }
        prepareAdapter(inFeatures);
        NDManager manager = weight.getArray().getManager();
        loraA.initialize(manager, dtype);
        loraB.initialize(manager, dtype);
    }

    private static Parameter adapterParameter(String name, Initializer initializer) {
        return Parameter.builder()
                .setName(name)
                .setType(Parameter.Type.WEIGHT)
                .optInitializer(initializer)
                .build();
    }

    private static Initializer initializerA(LoRAInit init, int r, Sharding part) {
        Initializer whole =
                init == LoRAInit.GAUSSIAN
                        ? new NormalInitializer(1f / r)
                        // Kaiming-uniform, a = sqrt(5): bound = sqrt(6 / ((1 + a^2) in)) = 1 /
                        // sqrt(in)
                        : (manager, shape, type) -> {
                            float bound = (float) (1 / Math.sqrt(shape.get(1)));
                            return manager.randomUniform(-bound, bound, shape, type);
                        };
        return part == null ? whole : part.drawWholeKeepPart(whole);
    }

    private static Initializer initializerB(LoRAInit init, int r, Sharding part) {
        if (init != LoRAInit.RANDOM) {
            return Initializer.ZEROS;
        }
        Initializer whole = new UniformInitializer((float) (1 / Math.sqrt(r)));
        return part == null ? whole : part.drawWholeKeepPart(whole);
    }

    private static long units(Linear layer) {
        Shape[] out = layer.getOutputShapes(new Shape[] {new Shape(1, 1)});
        return out[0].get(out[0].dimension() - 1);
    }

    private static boolean hasBias(Linear layer) {
        return layer.getParameters().get("bias") != null;
    }

    /**
     * Creates a builder that wraps a layer.
     *
     * @param base a plain {@code Linear}, not already adapted
     * @return a new builder
     */
    public static Builder builder(Linear base) {
        Builder builder = new Builder();
        builder.base = base;
        return builder;
    }

    /**
     * Returns the wrapped layer, whose weight this layer shares.
     *
     * @return the original {@code Linear}
     */
    public Linear getBaseLayer() {
        return baseLayer;
    }

    /**
     * Returns the layer's logical path in its model, for messages.
     *
     * @return the path, or a description when the layer stands alone
     */
    public String getPath() {
        return path;
    }

    /**
     * Returns {@code A: [r, in]}.
     *
     * @return the down-projection parameter
     */
    public Parameter getLoraA() {
        return loraA;
    }

    /**
     * Returns {@code B: [out, r]}.
     *
     * @return the up-projection parameter
     */
    public Parameter getLoraB() {
        return loraB;
    }

    /**
     * Returns the frozen base weight {@code W: [out, in]}, shared with the wrapped layer.
     *
     * @return the weight parameter
     */
    public Parameter getWeight() {
        return weight;
    }

    /**
     * Returns the base bias {@code b: [out]}, shared with the wrapped layer.
     *
     * @return the bias parameter, or {@code null} when the layer has none
     */
    public Parameter getBias() {
        return bias;
    }

    /**
     * Returns the adapter's own parameters, the ones LoRA trains.
     *
     * @return {@code [lora_A, lora_B]}
     */
    public List<Parameter> adapterParameters() {
        return List.of(loraA, loraB);
    }

    /**
     * Returns the rank.
     *
     * @return {@code r}
     */
    public int getR() {
        return r;
    }

    /**
     * Returns the factor {@code s} of the branch.
     *
     * @return {@code alpha / r}, or {@code alpha / sqrt(r)} with rsLoRA
     */
    public double getScaling() {
        return scaling;
    }

    /**
     * Returns whether {@code s B A} is currently added into {@code W}.
     *
     * @return the merge state
     */
    public boolean isMerged() {
        return merged;
    }

    /**
     * Returns whether the branch takes part in the forward pass.
     *
     * @return false inside {@link LoRAModel#disableAdapter()}
     */
    public boolean isEnabled() {
        return enabled;
    }

    /**
     * Turns the branch on or off; a merged layer must be unmerged first.
     *
     * @param enabled whether the branch takes part in the forward pass
     * @throws IllegalStateException if the layer is merged
     */
    public void setEnabled(boolean enabled) {
        if (merged && !enabled) {
            throw new IllegalStateException(
                    path + ": unmerge the adapter before disabling it, or its delta stays in W");
        }
        this.enabled = enabled;
    }

    /**
     * Adds {@code s B A} into {@code W} without checking the result.
     *
     * @return false if the layer was already merged (then nothing changes)
     */
    public boolean merge() {
        return merge(false);
    }

    /**
     * Adds {@code s B A} into {@code W}.
     *
     * @param safe whether to compute the merged weight aside first and refuse it, leaving {@code W}
     *     unchanged, when it holds NaN or infinity
     * @return false if the layer was already merged (then nothing changes)
     * @throws IllegalStateException if {@code safe} and the merged weight is not finite
     */
    public boolean merge(boolean safe) {
        if (merged) {
            return false;
        }
        NDArray w = weight.getArray();
        if (safe) {
            try (NDArray candidate =
                    LoRAWeights.merged(w, loraA.getArray(), loraB.getArray(), scaling)) {
                if (!LoRAWeights.isFinite(candidate)) {
                    throw new IllegalStateException(
                            path
                                    + ": merging the adapter gives NaN or infinite weights; the"
                                    + " adapter is broken (check the learning rate); W is"
                                    + " unchanged");
                }
                NativeArrays.copyInto(w, candidate);
            }
        } else {
            try (NDArray delta =
                    LoRAWeights.delta(
                            loraA.getArray(), loraB.getArray(), scaling, w.getDataType())) {
                w.addi(delta);
            }
        }
        merged = true;
        return true;
    }

    /**
     * Subtracts {@code s B A} from {@code W} again.
     *
     * @return false if the layer was not merged (then nothing changes)
     */
    public boolean unmerge() {
        if (!merged) {
            return false;
        }
        NDArray w = weight.getArray();
        try (NDArray delta =
                LoRAWeights.delta(loraA.getArray(), loraB.getArray(), scaling, w.getDataType())) {
            w.subi(delta);
        }
        merged = false;
        return true;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        return new NDList(project(parameterStore, inputs.singletonOrThrow(), true, training));
    }

    /**
     * Computes the layer with the parameters this process holds: {@code x W^T + s (dropout(x) A^T)
     * B^T}, plus {@code b} if asked; the branch is skipped when merged or disabled. A layer split
     * across ranks adds its collectives around this.
     *
     * @param parameterStore the parameter store
     * @param x the input {@code [..., in]}
     * @param withBias whether to add {@code b} (a row-parallel layer adds it after its sum)
     * @param training whether this is a training forward pass
     * @return {@code [..., out]}
     * @throws IllegalStateException if the layer is merged and {@code training} is true
     */
    protected NDArray project(
            ParameterStore parameterStore, NDArray x, boolean withBias, boolean training) {
        Device device = x.getDevice();
        NDArray w = parameterStore.getValue(weight, device, training);
        NDArray b = withBias ? parameterStore.getValue(bias, device, training) : null;
        if (merged && training) {
            throw new IllegalStateException(
                    path
                            + ": the adapter is merged into W, so training would give A and B no"
                            + " gradient; call LoRAModel.train() or unmerge() first");
        }
        if (merged || !enabled) {
            return linear(x, w, b).singletonOrThrow();
        }
        NDArray a = parameterStore.getValue(loraA, device, training);
        NDArray bb = parameterStore.getValue(loraB, device, training);
        Shape shape = x.getShape();
        long in = shape.get(shape.dimension() - 1);
        if (!training && x.size() / in * (in + 2 * outFeatures) > 2 * in * outFeatures) {
            return linear(x, effectiveWeight(w, a, bb, x.getManager()), b).singletonOrThrow();
        }
        // Rows flattened so that the base product can take the LoRA term as its addend:
        // y = x W^T + (s (x A^T) B^T + b) in one matrix-multiply-add, the scale applied to the
        // [rows, r] intermediate, and no separate pass over [rows, out] to add the branch.
        NDArray rows = x.reshape(-1, in);
        NDArray h =
                dropout > 0 ? Dropout.dropout(rows, dropout, training).singletonOrThrow() : rows;
        if (h.getDataType() != a.getDataType()) {
            h = h.toType(a.getDataType(), false);
        }
        NDArray down = Scalars.mul(linear(h, a).singletonOrThrow(), scaling);
        NDArray addend;
        if (bb.getDataType() == rows.getDataType()) {
            addend = linear(down, bb, b).singletonOrThrow();
        } else {
            // A float16 adapter computes its branch in float16; the base bias is added after
            // the cast back, so that it keeps the base layer's precision.
            addend = linear(down, bb).singletonOrThrow().toType(rows.getDataType(), false);
            if (b != null) {
                addend = addend.add(b);
            }
        }
        NDArray y = linear(rows, w, addend).singletonOrThrow();
        return y.reshape(shape.slice(0, shape.dimension() - 1).add(outFeatures));
    }

    /**
     * Returns {@code W + s B A} for an inference pass over many rows, in one matrix-multiply-add.
     * Forming it costs a pass over {@code W} and an {@code [out, r] x [r, in]} product; the branch
     * costs a second read of the {@code rows x in} input and a {@code rows x out} intermediate
     * written and read again. Past {@code rows (in + 2 out) > 2 in out} (a 512 x 512 projection
     * over more than 341 rows) the weight is cheaper. {@code W} itself is untouched, so the adapter
     * stays separate.
     */
    private NDArray effectiveWeight(NDArray w, NDArray a, NDArray b, NDManager scratch) {
        NDArray effective;
        try (NDArray detachedA = a.stopGradient();
                NDArray detachedB = b.stopGradient()) {
            if (a.getDataType() == w.getDataType()) {
                try (NDArray scaledB = Scalars.mul(detachedB, scaling);
                        NDArray columnsOfA = detachedA.transpose()) {
                    effective = linear(scaledB, columnsOfA, w).singletonOrThrow();
                }
            } else {
                try (NDArray delta =
                        LoRAWeights.delta(detachedA, detachedB, scaling, w.getDataType())) {
                    effective = w.add(delta);
                }
            }
        }
        effective.attach(scratch); // freed with the pass's other arrays, not with W's owner
        return effective;
    }

    /** {@inheritDoc} */
    @Override
    public void initialize(NDManager manager, DataType dataType, Shape... inputShapes) {
        beforeInitialize(inputShapes);
        if (!isInitialized()) {
            prepare(inputShapes);
        }
        weight.initialize(manager, dataType);
        if (bias != null) {
            bias.initialize(manager, dataType);
        }
        loraA.initialize(manager, dtype);
        loraB.initialize(manager, dtype);
    }

    /** {@inheritDoc} */
    @Override
    public void prepare(Shape[] inputShapes) {
        Shape input = inputShapes[0];
        long inFeatures = input.get(input.dimension() - 1);
        if (!weight.isInitialized()) {
            weight.setShape(new Shape(outFeatures, inFeatures));
        }
        if (bias != null && !bias.isInitialized()) {
            bias.setShape(new Shape(outFeatures));
        }
        prepareAdapter(inFeatures);
    }

    private void prepareAdapter(long inFeatures) {
        if (!loraA.isInitialized()) {
            loraA.setShape(new Shape(r, inFeatures));
        }
        if (!loraB.isInitialized()) {
            loraB.setShape(new Shape(outFeatures, r));
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "LoRALinear(" + path + ", r=" + r + ", scaling=" + scaling + ')';
    }

    /** The builder of {@link LoRALinear}: {@code set*} is required, {@code opt*} optional. */
    public static final class Builder {

        Linear base;
        String path = "a LoRALinear";
        int r = 8;
        double scaling = 1;
        double dropout;
        LoRAInit init = LoRAInit.KAIMING_UNIFORM;
        DataType dtype = DataType.FLOAT32;

        Builder() {}

        /**
         * Sets the rank.
         *
         * @param r an integer &gt; 0
         * @return this builder
         */
        public Builder setR(int r) {
            this.r = r;
            return this;
        }

        /**
         * Sets the factor {@code s} of the branch.
         *
         * @param scaling {@code alpha / r} (or {@code alpha / sqrt(r)}); default 1
         * @return this builder
         */
        public Builder optScaling(double scaling) {
            this.scaling = scaling;
            return this;
        }

        /**
         * Sets the dropout rate on the branch's input during training.
         *
         * @param dropout a rate in [0, 1); default 0
         * @return this builder
         */
        public Builder optDropout(double dropout) {
            this.dropout = dropout;
            return this;
        }

        /**
         * Sets how {@code A} and {@code B} start.
         *
         * @param init the initialisation; default {@link LoRAInit#KAIMING_UNIFORM}
         * @return this builder
         */
        public Builder optInit(LoRAInit init) {
            this.init = init;
            return this;
        }

        /**
         * Sets the type of {@code A} and {@code B}.
         *
         * @param dtype float32 (default) or float16
         * @return this builder
         */
        public Builder optDtype(DataType dtype) {
            this.dtype = dtype;
            return this;
        }

        /**
         * Sets the layer's path in its model, used in messages.
         *
         * @param path a logical path such as {@code model.layers.0.self_attn.q_proj}
         * @return this builder
         */
        public Builder optPath(String path) {
            this.path = path;
            return this;
        }

        /**
         * Builds the layer; if the wrapped layer's weight is set, {@code A} and {@code B} are
         * created at once on its manager. A layer that is an {@link AdaptableLinear} builds its own
         * kind of adapted layer from these settings.
         *
         * @return the layer
         * @throws IllegalArgumentException if no layer is set, it is already adapted, or a value is
         *     out of range
         */
        public LoRALinear build() {
            if (base == null) {
                throw new IllegalArgumentException("the layer to wrap is null");
            }
            if (base instanceof LoRALinear) {
                throw new IllegalArgumentException(path + " already has a LoRA adapter");
            }
            if (r <= 0) {
                throw new IllegalArgumentException("r must be an integer > 0, got " + r);
            }
            if (!(dropout >= 0 && dropout < 1)) {
                throw new IllegalArgumentException("dropout must lie in [0, 1), got " + dropout);
            }
            if (dtype != DataType.FLOAT32 && dtype != DataType.FLOAT16) {
                throw new IllegalArgumentException(
                        "dtype must be float32 or float16, got " + dtype);
            }
            if (base instanceof AdaptableLinear) {
                return ((AdaptableLinear) base).adapt(this);
            }
            LoRALinear layer = new LoRALinear(this);
            layer.initializeAdapterFromBase();
            return layer;
        }
    }
}
