package org.peft4j.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.training.initializer.UniformInitializer;
import ai.djl.util.PairList;

import org.peft4j.core.AdapterNames;
import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.parallel.Sharding;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

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
 * <p>A layer may carry several named adapters ({@link LoRABranch}, {@code default} first); the
 * branches of the active ones add, and in a mixed batch ({@link AdapterRows}) each row takes only
 * its own adapter's branch. The {@code default} adapter's parameters are named {@code lora_A} and
 * {@code lora_B} in this block, as a single-adapter layer always named them; another adapter's
 * {@code lora_A.<name>} and {@code lora_B.<name>}.
 *
 * <p>{@code B A} is never materialised in the forward pass. {@link #merge()} adds {@code s B A} to
 * {@code W} and the forward pass then skips the branch; {@link #unmerge()} subtracts it again,
 * which restores {@code W} to within float rounding. A merged layer refuses to run in training
 * mode, because {@code A} and {@code B} would get no gradient.
 */
public class LoRALinear extends Linear {

    /** The name of the adapter a layer carries when none is given. */
    public static final String DEFAULT_ADAPTER = AdapterNames.DEFAULT;

    private final Linear baseLayer;
    private final String path;
    private final Parameter weight;
    private final Parameter bias;
    private final long outFeatures;
    private final Sharding shardingOfA;
    private final Sharding shardingOfB;
    private final Map<String, LoRABranch> branches = new LinkedHashMap<>();
    private final Set<String> merged = new LinkedHashSet<>();
    private List<String> active;
    private boolean enabled = true;
    private AdapterRows rows;

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
     * the constructor calls no method a subclass could override: it only declares the parameters
     * of the builder's adapter. {@link #initializeAdapterFromBase()} creates them after
     * construction.
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
        this.outFeatures = outFeatures;
        this.shardingOfA = shardingOfA;
        this.shardingOfB = shardingOfB;
        this.weight = builder.base.getParameters().get("weight");
        this.bias = builder.base.getParameters().get("bias");
        parameters.clear();
        parameters.put("weight", weight);
        if (bias != null) {
            parameters.put("bias", bias);
        }
        declareBranch(builder);
        this.active = List.of(builder.adapterName);
    }

    private LoRABranch declareBranch(Builder settings) {
        String name = settings.adapterName;
        Parameter a =
                addParameter(
                        adapterParameter(
                                parameterName("lora_A", name),
                                initializerA(settings.init, settings.r, shardingOfA)));
        Parameter b =
                addParameter(
                        adapterParameter(
                                parameterName("lora_B", name),
                                initializerB(settings.init, settings.r, shardingOfB)));
        LoRABranch branch =
                new LoRABranch(
                        name,
                        a,
                        b,
                        settings.r,
                        settings.scaling,
                        (float) settings.dropout,
                        settings.dtype);
        branches.put(name, branch);
        return branch;
    }

    /**
     * The name of a branch's parameter in this block: {@code lora_A} for the {@code default}
     * adapter, as a single-adapter layer always named it, {@code lora_A.<name>} for the others.
     */
    private static String parameterName(String matrix, String adapter) {
        return DEFAULT_ADAPTER.equals(adapter) ? matrix : matrix + '.' + adapter;
    }

    /**
     * Creates every adapter's {@code A} and {@code B} not yet created, on the wrapped weight's
     * manager, when that weight already exists (a loaded model), so that the layer runs without
     * {@link #initialize}; a layer whose weight is not set yet gets them from {@code initialize}
     * instead. Whoever constructs the layer calls this right after the constructor: {@link
     * Builder#build()}, or the {@link AdaptableLinear#adapt} of a layer that builds its own kind.
     * Drawing {@code A} and {@code B} there rather than in the constructor keeps the constructor
     * free of calls into a subclass whose fields are not yet set.
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
        for (LoRABranch branch : branches.values()) {
            for (Parameter parameter : branch.parameters()) {
                if (!parameter.isInitialized()) {
                    parameter.initialize(manager, branch.getDtype());
                }
            }
        }
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
     * Adds another adapter's branch to this layer, created at once when the wrapped weight is set
     * (else by {@link #initialize}). The new adapter is not active: {@link #setActiveAdapters}
     * turns it on.
     *
     * @param settings the new adapter's name ({@link Builder#optAdapterName}), rank, scaling,
     *     dropout, initialisation and dtype; its wrapped layer is ignored
     * @return the new branch
     * @throws IllegalArgumentException if the layer has an adapter of that name, or a setting is
     *     out of range
     */
    public LoRABranch addAdapter(Builder settings) {
        settings.validate();
        if (branches.containsKey(settings.adapterName)) {
            throw new IllegalArgumentException(
                    path + " already has an adapter named " + settings.adapterName);
        }
        LoRABranch branch = declareBranch(settings);
        initializeAdapterFromBase();
        return branch;
    }

    /**
     * Removes an adapter's branch and frees its arrays.
     *
     * @param name the adapter
     * @throws IllegalArgumentException if the layer has no such adapter
     * @throws IllegalStateException if the adapter is merged into {@code W}
     */
    public void deleteAdapter(String name) {
        LoRABranch branch = getBranch(name);
        if (merged.contains(name)) {
            throw new IllegalStateException(
                    path + ": adapter " + name + " is merged into W; unmerge it before deleting");
        }
        branches.remove(name);
        parameters.remove(branch.getLoraA().getName());
        parameters.remove(branch.getLoraB().getName());
        branch.parameters().forEach(Parameter::close);
        List<String> remaining = new ArrayList<>(active);
        remaining.remove(name);
        active = List.copyOf(remaining);
    }

    /**
     * Returns the branch of an adapter.
     *
     * @param name the adapter
     * @return its branch on this layer
     * @throws IllegalArgumentException if the layer has no such adapter
     */
    public LoRABranch getBranch(String name) {
        LoRABranch branch = branches.get(name);
        if (branch == null) {
            throw new IllegalArgumentException(
                    path + " has no adapter named " + name + "; it has " + branches.keySet());
        }
        return branch;
    }

    /**
     * Returns every adapter's branch on this layer.
     *
     * @return an ordered, unmodifiable map from adapter name to branch
     */
    public Map<String, LoRABranch> getBranches() {
        return Collections.unmodifiableMap(branches);
    }

    /** Replaces a branch's factor {@code s}, keeping its arrays (a hot swap with a new alpha). */
    void setScaling(String name, double scaling) {
        branches.put(name, getBranch(name).withScaling(scaling));
    }

    /**
     * Sets which adapters take part in the forward pass; their branches add. Names this layer does
     * not carry are skipped: an adapter need not target every layer.
     *
     * @param names the active adapters, in order
     */
    public void setActiveAdapters(List<String> names) {
        List<String> own = new ArrayList<>();
        for (String name : names) {
            if (branches.containsKey(name)) {
                own.add(name);
            }
        }
        active = List.copyOf(own);
    }

    /**
     * Returns the adapters of this layer that take part in the forward pass.
     *
     * @return an unmodifiable list, in order
     */
    public List<String> getActiveAdapters() {
        return active;
    }

    /**
     * Routes the rows of the following forward passes to adapters (a mixed batch), or ends that.
     * {@link LoRAModel#forAdapterRows} sets this on every layer for one scope.
     *
     * @param rows which adapter each row uses, or null to use the active adapters again
     */
    public void setAdapterRows(AdapterRows rows) {
        this.rows = rows;
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
     * Returns {@code A: [r, in]} of the one active adapter.
     *
     * @return the down-projection parameter
     * @throws IllegalStateException unless exactly one adapter of this layer is active
     */
    public Parameter getLoraA() {
        return soleBranch().getLoraA();
    }

    /**
     * Returns {@code B: [out, r]} of the one active adapter.
     *
     * @return the up-projection parameter
     * @throws IllegalStateException unless exactly one adapter of this layer is active
     */
    public Parameter getLoraB() {
        return soleBranch().getLoraB();
    }

    /**
     * Returns the rank of the one active adapter.
     *
     * @return {@code r}
     * @throws IllegalStateException unless exactly one adapter of this layer is active
     */
    public int getR() {
        return soleBranch().getR();
    }

    /**
     * Returns the factor {@code s} of the one active adapter's branch.
     *
     * @return {@code alpha / r}, or {@code alpha / sqrt(r)} with rsLoRA
     * @throws IllegalStateException unless exactly one adapter of this layer is active
     */
    public double getScaling() {
        return soleBranch().getScaling();
    }

    private LoRABranch soleBranch() {
        if (active.size() != 1) {
            throw new IllegalStateException(
                    path
                            + ": "
                            + active.size()
                            + " of its adapters are active "
                            + active
                            + "; ask getBranch(name) for one of "
                            + branches.keySet());
        }
        return branches.get(active.get(0));
    }

    /**
     * Returns whether a parameter is the {@code A} of one of the layer's adapters.
     *
     * @param parameter a parameter
     * @return whether it is some branch's {@code A}
     */
    protected final boolean isLoraA(Parameter parameter) {
        return branches.values().stream().anyMatch(b -> b.getLoraA() == parameter);
    }

    /**
     * Returns whether a parameter is the {@code B} of one of the layer's adapters.
     *
     * @param parameter a parameter
     * @return whether it is some branch's {@code B}
     */
    protected final boolean isLoraB(Parameter parameter) {
        return branches.values().stream().anyMatch(b -> b.getLoraB() == parameter);
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
     * Returns every adapter's own parameters, the ones LoRA trains.
     *
     * @return {@code [lora_A, lora_B]} of each adapter, in order
     */
    public List<Parameter> adapterParameters() {
        List<Parameter> all = new ArrayList<>();
        branches.values().forEach(branch -> all.addAll(branch.parameters()));
        return all;
    }

    /**
     * Returns whether an adapter's {@code s B A} is currently added into {@code W}.
     *
     * @return true when some adapter is merged
     */
    public boolean isMerged() {
        return !merged.isEmpty();
    }

    /**
     * Returns the adapters merged into {@code W}.
     *
     * @return an unmodifiable set, in merge order
     */
    public Set<String> getMergedAdapters() {
        return Collections.unmodifiableSet(new LinkedHashSet<>(merged));
    }

    /**
     * Returns whether the branches take part in the forward pass.
     *
     * @return false inside {@link LoRAModel#disableAdapter()}
     */
    public boolean isEnabled() {
        return enabled;
    }

    /**
     * Turns the branches on or off; a merged layer must be unmerged first.
     *
     * @param enabled whether the branches take part in the forward pass
     * @throws IllegalStateException if the layer is merged
     */
    public void setEnabled(boolean enabled) {
        if (isMerged() && !enabled) {
            throw new IllegalStateException(
                    path + ": unmerge the adapter before disabling it, or its delta stays in W");
        }
        this.enabled = enabled;
    }

    /**
     * Adds the active adapters' {@code s B A} into {@code W} without checking the result.
     *
     * @return false if nothing was left to merge (then nothing changes)
     */
    public boolean merge() {
        return merge(false);
    }

    /**
     * Adds the active adapters' {@code s B A} into {@code W}.
     *
     * @param safe whether to compute each merged weight aside first and refuse it, leaving {@code
     *     W} unchanged, when it holds NaN or infinity
     * @return false if nothing was left to merge (then nothing changes)
     * @throws IllegalStateException if {@code safe} and a merged weight is not finite
     */
    public boolean merge(boolean safe) {
        return merge(safe, active);
    }

    /**
     * Adds the named adapters' {@code s B A} into {@code W}; names this layer does not carry, and
     * adapters already merged, are skipped.
     *
     * @param safe whether to compute each merged weight aside first and refuse it, leaving {@code
     *     W} unchanged, when it holds NaN or infinity
     * @param names the adapters to merge
     * @return false if nothing was left to merge (then nothing changes)
     * @throws IllegalStateException if {@code safe} and a merged weight is not finite
     */
    public boolean merge(boolean safe, List<String> names) {
        boolean changed = false;
        for (String name : names) {
            LoRABranch branch = branches.get(name);
            if (branch == null || merged.contains(name)) {
                continue;
            }
            mergeBranch(branch, safe);
            merged.add(name);
            changed = true;
        }
        return changed;
    }

    private void mergeBranch(LoRABranch branch, boolean safe) {
        NDArray w = weight.getArray();
        NDArray a = branch.getLoraA().getArray();
        NDArray b = branch.getLoraB().getArray();
        if (safe) {
            try (NDArray candidate = LoRAWeights.merged(w, a, b, branch.getScaling())) {
                if (!LoRAWeights.isFinite(candidate)) {
                    throw new IllegalStateException(
                            path
                                    + ": merging adapter "
                                    + branch.getName()
                                    + " gives NaN or infinite weights; the adapter is broken"
                                    + " (check the learning rate); W is unchanged");
                }
                NativeArrays.copyInto(w, candidate);
            }
        } else {
            try (NDArray delta = LoRAWeights.delta(a, b, branch.getScaling(), w.getDataType())) {
                w.addi(delta);
            }
        }
    }

    /**
     * Subtracts every merged adapter's {@code s B A} from {@code W} again, last merged first.
     *
     * @return false if nothing was merged (then nothing changes)
     */
    public boolean unmerge() {
        if (merged.isEmpty()) {
            return false;
        }
        List<String> order = new ArrayList<>(merged);
        Collections.reverse(order);
        NDArray w = weight.getArray();
        for (String name : order) {
            LoRABranch branch = branches.get(name);
            try (NDArray delta =
                    LoRAWeights.delta(
                            branch.getLoraA().getArray(),
                            branch.getLoraB().getArray(),
                            branch.getScaling(),
                            w.getDataType())) {
                w.subi(delta);
            }
            merged.remove(name);
        }
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
     * Computes the layer with the parameters this process holds: {@code x W^T + sum_i s_i
     * (dropout_i(x) A_i^T) B_i^T} over the active adapters not merged, plus {@code b} if asked;
     * no branch runs inside {@link LoRAModel#disableAdapter()}. In a mixed batch ({@link
     * #setAdapterRows}) each row gets only its own adapter's branch. A layer split across ranks
     * adds its collectives around this.
     *
     * @param parameterStore the parameter store
     * @param x the input {@code [..., in]}; {@code [B, ...]} in a mixed batch
     * @param withBias whether to add {@code b} (a row-parallel layer adds it after its sum)
     * @param training whether this is a training forward pass
     * @return {@code [..., out]}
     * @throws IllegalStateException if an active adapter is merged and {@code training} is true,
     *     or a mixed batch is run in training, merged, or on an input of another batch size
     */
    protected NDArray project(
            ParameterStore parameterStore, NDArray x, boolean withBias, boolean training) {
        Device device = x.getDevice();
        NDArray w = parameterStore.getValue(weight, device, training);
        NDArray b = withBias ? parameterStore.getValue(bias, device, training) : null;
        if (!enabled) {
            return linear(x, w, b).singletonOrThrow();
        }
        if (rows != null) {
            if (training) {
                throw new IllegalStateException(
                        path
                                + ": a mixed-adapter batch is for inference; train one adapter"
                                + " at a time (LoRAModel.setAdapter)");
            }
            return projectMixed(parameterStore, x, w, b);
        }
        List<LoRABranch> running = new ArrayList<>();
        for (String name : active) {
            if (!merged.contains(name)) {
                running.add(branches.get(name));
            } else if (training) {
                throw new IllegalStateException(
                        path
                                + ": adapter "
                                + name
                                + " is merged into W, so training would give its A and B no"
                                + " gradient; call LoRAModel.train() or unmerge() first");
            }
        }
        return LoRAProducts.compute(parameterStore, x, w, b, running, training);
    }

    /** Checks that a mixed batch can run here, then runs it ({@link LoRAProducts#mixed}). */
    private NDArray projectMixed(ParameterStore ps, NDArray x, NDArray w, NDArray b) {
        if (!merged.isEmpty()) {
            throw new IllegalStateException(
                    path
                            + ": a mixed-adapter batch needs the adapters unmerged, but "
                            + merged
                            + " is merged into W; call unmerge() first");
        }
        long batch = x.getShape().get(0);
        if (x.getShape().dimension() < 2 || batch != rows.getBatchSize()) {
            throw new IllegalStateException(
                    path
                            + ": the mixed batch names "
                            + rows.getBatchSize()
                            + " rows, but the layer's input is "
                            + x.getShape()
                            + "; give one adapter name per row of the batch");
        }
        return LoRAProducts.mixed(ps, x, w, b, rows, branches);
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
        for (LoRABranch branch : branches.values()) {
            branch.getLoraA().initialize(manager, branch.getDtype());
            branch.getLoraB().initialize(manager, branch.getDtype());
        }
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
        for (LoRABranch branch : branches.values()) {
            if (!branch.getLoraA().isInitialized()) {
                branch.getLoraA().setShape(new Shape(branch.getR(), inFeatures));
            }
            if (!branch.getLoraB().isInitialized()) {
                branch.getLoraB().setShape(new Shape(outFeatures, branch.getR()));
            }
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "LoRALinear(" + path + ", " + branches.values() + ')';
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
        String adapterName = DEFAULT_ADAPTER;

        Builder() {}

        /**
         * Sets the name of the adapter the layer is built with, or that {@link
         * LoRALinear#addAdapter} adds.
         *
         * @param adapterName a name {@link AdapterNames} allows; default {@code default}
         * @return this builder
         */
        public Builder optAdapterName(String adapterName) {
            this.adapterName = adapterName;
            return this;
        }

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
            validate();
            if (base instanceof AdaptableLinear) {
                return ((AdaptableLinear) base).adapt(this);
            }
            LoRALinear layer = new LoRALinear(this);
            layer.initializeAdapterFromBase();
            return layer;
        }

        /** Checks the adapter's settings, those {@link LoRALinear#addAdapter} takes too. */
        void validate() {
            AdapterNames.check(adapterName);
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
        }
    }
}
