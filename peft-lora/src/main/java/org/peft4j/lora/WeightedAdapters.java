package org.peft4j.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;

import org.peft4j.core.io.NativeArrays;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Combines several LoRA adapters of one base model into one adapter, with the math of Hugging Face
 * PEFT's {@code LoraModel.add_weighted_adapter} (read in {@code src/peft/tuners/lora/model.py} of
 * huggingface/peft at commit 00277830b806ba52017c1a1fc315efb18844db9d).
 *
 * <p>Adapter {@code i} has weight {@code w_i}, scaling {@code s_i} and, at each layer it adapts,
 * {@code A_i: [r_i, in]} and {@code B_i: [out, r_i]}; its delta there is {@code s_i B_i A_i}. The
 * new adapter adapts the union of the layers the inputs adapt; at a layer, an input that does not
 * adapt it contributes nothing. Its {@code r} is chosen per {@link Combination}, its {@code
 * lora_alpha} is that {@code r} (as HF sets it), so its scaling is 1, and its other fields are the
 * first input's, as HF copies them; {@code use_rslora} is cleared so that the scaling stays 1.
 *
 * <ul>
 *   <li>{@link Combination#LINEAR}: every {@code r_i} equal; {@code A = sum_i sqrt(w_i s_i) A_i},
 *       {@code B = sum_i sqrt(w_i s_i) B_i} (HF scales both factors by the root). Its delta is not
 *       the weighted sum of the deltas: the cross terms {@code B_i A_j} remain.
 *   <li>{@link Combination#CAT}: {@code r = sum_i r_i}; {@code A} stacks the {@code w_i s_i A_i}
 *       along the rank, {@code B} puts the {@code B_i} side by side, so {@code B A = sum_i w_i s_i
 *       B_i A_i} exactly. At a layer that only some inputs adapt, their blocks come first and the
 *       remaining rank is zeros, as in HF.
 *   <li>{@link Combination#SVD}: {@code r = }{@link Builder#optRank(int)}, or the largest {@code
 *       r_i}; {@code D = sum_i w_i s_i B_i A_i = U S V^T} and {@code B = U_r S_r}, {@code A =
 *       V_r^T}: the best rank-{@code r} approximation of {@code D} in the Frobenius norm. Ranks
 *       beyond the rank of {@code D} are zeros.
 * </ul>
 *
 * <p>Everything is computed in double precision on the JVM. The SVD never forms {@code D}: it is
 * the product of the {@code cat} factors {@code P = [w_i s_i B_i]: [out, k]} and {@code Q = [A_i]:
 * [k, in]} with {@code k = sum_i r_i}, so {@code P = Q_P R_P} and {@code Q^T = Q_Q R_Q}
 * (Gram-Schmidt run twice, which keeps the columns orthogonal to rounding) give {@code D = Q_P
 * (R_P R_Q^T) Q_Q^T}, and the small {@code k x k} core is decomposed by one-sided Jacobi (Hestenes), which is
 * accurate to rounding in every singular value. This costs {@code O((out + in) k^2)} per layer
 * instead of the {@code O(out in min(out, in))} of a dense SVD, and needs no LAPACK in the engine.
 */
public final class WeightedAdapters {

    /** How the adapters are combined; see {@link WeightedAdapters}. */
    public enum Combination {
        /** Weighted sums of the factors; equal ranks. */
        LINEAR,
        /** Concatenated ranks: the exact weighted sum of the deltas. */
        CAT,
        /** The weighted sum of the deltas truncated by SVD. */
        SVD;

        /**
         * Parses a name as HF writes it ({@code linear}, {@code cat}, {@code svd}).
         *
         * @param name the name, any case
         * @return the combination
         * @throws IllegalArgumentException naming the allowed values
         */
        public static Combination of(String name) {
            for (Combination c : values()) {
                if (c.name().equalsIgnoreCase(name)) {
                    return c;
                }
            }
            throw new IllegalArgumentException(
                    "unknown combination \""
                            + name
                            + "\": use linear, cat or svd (HF's ties, dare_* and magnitude_prune"
                            + " are not implemented)");
        }

        /**
         * Returns the name as HF writes it.
         *
         * @return {@code linear}, {@code cat} or {@code svd}
         */
        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * The two factors of one layer's adapter, row-major in double precision: {@code A: [r, in]}
     * and {@code B: [out, r]}.
     */
    public static final class Factors {

        final int r;
        final int in;
        final int out;
        final double[] a;
        final double[] b;

        /**
         * Holds factors; the arrays are copied.
         *
         * @param r the rank
         * @param in the input features
         * @param out the output features
         * @param a {@code A}, {@code r * in} values, row-major
         * @param b {@code B}, {@code out * r} values, row-major
         * @throws IllegalArgumentException if a length disagrees with the shape
         */
        public Factors(int r, int in, int out, double[] a, double[] b) {
            if (a.length != (long) r * in || b.length != (long) out * r) {
                throw new IllegalArgumentException(
                        "A must have r * in = "
                                + r * in
                                + " values and B out * r = "
                                + out * r
                                + ", got "
                                + a.length
                                + " and "
                                + b.length);
            }
            this.r = r;
            this.in = in;
            this.out = out;
            this.a = a.clone();
            this.b = b.clone();
        }

        /**
         * Copies the factors of a layer's one active adapter.
         *
         * @param layer an adapted layer with initialised {@code A} and {@code B}
         * @return the factors in double precision
         * @throws IllegalStateException unless exactly one adapter of the layer is active
         */
        public static Factors of(LoRALinear layer) {
            return of(layer.getLoraA(), layer.getLoraB());
        }

        /**
         * Copies one adapter's factors on a layer.
         *
         * @param branch the adapter's branch, with initialised {@code A} and {@code B}
         * @return the factors in double precision
         */
        public static Factors of(LoRABranch branch) {
            return of(branch.getLoraA(), branch.getLoraB());
        }

        private static Factors of(Parameter a, Parameter b) {
            Shape shapeA = a.getArray().getShape();
            Shape shapeB = b.getArray().getShape();
            return new Factors(
                    (int) shapeA.get(0),
                    (int) shapeA.get(1),
                    (int) shapeB.get(0),
                    doubles(a.getArray()),
                    doubles(b.getArray()));
        }

        private static double[] doubles(NDArray array) {
            try (NDArray wide = array.toType(DataType.FLOAT64, true)) {
                return wide.toDoubleArray();
            }
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
         * Returns the input features.
         *
         * @return {@code in}
         */
        public int getIn() {
            return in;
        }

        /**
         * Returns the output features.
         *
         * @return {@code out}
         */
        public int getOut() {
            return out;
        }

        /**
         * Returns {@code A}.
         *
         * @return a copy, {@code r * in} values, row-major
         */
        public double[] getA() {
            return a.clone();
        }

        /**
         * Returns {@code B}.
         *
         * @return a copy, {@code out * r} values, row-major
         */
        public double[] getB() {
            return b.clone();
        }
    }

    /** One input adapter: a name for messages, its config, and its factors by layer path. */
    public static final class Adapter {

        private final String name;
        private final LoRAConfig config;
        private final Map<String, Factors> layers;

        /**
         * Holds an adapter.
         *
         * @param name how messages name it, such as its directory
         * @param config its config; its scaling is {@code s_i}
         * @param layers its factors by logical layer path, at least one
         */
        public Adapter(String name, LoRAConfig config, Map<String, Factors> layers) {
            this.name = Objects.requireNonNull(name, "name");
            this.config = Objects.requireNonNull(config, "config");
            this.layers = Collections.unmodifiableMap(new LinkedHashMap<>(layers));
        }

        /**
         * Copies the first active adapter of a model ({@link LoRAModel#getPeftConfig()}'s).
         *
         * @param name how messages name it
         * @param model the adapted model
         * @return the adapter; the model stays as it was
         */
        public static Adapter of(String name, LoRAModel model) {
            String adapter = model.getActiveAdapters().get(0);
            Map<String, Factors> layers = new LinkedHashMap<>();
            model.getLoRALayers(adapter)
                    .forEach(
                            (path, layer) ->
                                    layers.put(path, Factors.of(layer.getBranch(adapter))));
            return new Adapter(name, model.getPeftConfig(adapter), layers);
        }

        /**
         * Reads an adapter directory over a base model and copies its factors; the base model is
         * unloaded again, so that one base model serves every input in turn.
         *
         * @param base the base model with its weights
         * @param dir the adapter directory ({@link LoRAModel#fromPretrained})
         * @return the adapter, named by {@code dir}
         * @throws IOException if the directory cannot be read
         */
        public static Adapter read(Block base, Path dir) throws IOException {
            LoRAModel model = LoRAModel.fromPretrained(base, dir);
            try {
                return of(dir.toString(), model);
            } finally {
                model.unload();
            }
        }

        /**
         * Returns the name.
         *
         * @return the name messages use
         */
        public String getName() {
            return name;
        }

        /**
         * Returns the config.
         *
         * @return the config
         */
        public LoRAConfig getConfig() {
            return config;
        }

        /**
         * Returns the factors.
         *
         * @return an unmodifiable map from logical layer path to factors
         */
        public Map<String, Factors> getLayers() {
            return layers;
        }
    }

    private final LoRAConfig config;
    private final Map<String, Factors> layers;

    private WeightedAdapters(LoRAConfig config, Map<String, Factors> layers) {
        this.config = config;
        this.layers = Collections.unmodifiableMap(layers);
    }

    /**
     * Creates a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the combined adapter's config: {@code r} and {@code lora_alpha} the new rank, {@code
     * target_modules} the union of the adapted layers' paths, the rest the first input's.
     *
     * @return the config; its scaling is 1
     */
    public LoRAConfig getConfig() {
        return config;
    }

    /**
     * Returns the combined factors.
     *
     * @return an unmodifiable map from logical layer path to factors of rank {@code getConfig()
     *     .getR()}
     */
    public Map<String, Factors> getLayers() {
        return layers;
    }

    /**
     * Adapts a base model with the combined adapter.
     *
     * @param base the base model, with its weights, not adapted
     * @return the adapted model, in training mode, {@code A} and {@code B} in the config's dtype
     */
    public LoRAModel apply(Block base) {
        LoRAModel model = new LoRAModel(base, config);
        try {
            for (Map.Entry<String, LoRALinear> entry : model.getLoRALayers().entrySet()) {
                Factors f = layers.get(entry.getKey());
                if (f == null) {
                    throw new IllegalArgumentException(
                            "the combined adapter has no factors for layer " + entry.getKey());
                }
                copy(entry.getValue().getLoraA().getArray(), f.a, new Shape(f.r, f.in));
                copy(entry.getValue().getLoraB().getArray(), f.b, new Shape(f.out, f.r));
            }
            return model;
        } catch (RuntimeException e) {
            model.unload();
            throw e;
        }
    }

    private static void copy(NDArray target, double[] values, Shape shape) {
        if (!target.getShape().equals(shape)) {
            throw new IllegalArgumentException(
                    "the base model's layer needs " + target.getShape() + ", combined " + shape);
        }
        try (NDManager scratch = target.getManager().newSubManager()) {
            NDArray source = scratch.create(values, shape).toType(target.getDataType(), false);
            NativeArrays.copyInto(target, source);
        }
    }

    /**
     * Writes the combined adapter as an ordinary adapter directory, which {@link
     * LoRAModel#fromPretrained} reads: it adapts the base model, saves, and unloads it again.
     *
     * @param base the base model, with its weights, not adapted
     * @param dir the directory, replaced as {@link LoRAModel#savePretrained(Path)} replaces it
     * @throws IOException if writing fails
     */
    public void save(Block base, Path dir) throws IOException {
        LoRAModel model = apply(base);
        try {
            model.savePretrained(dir);
        } finally {
            model.unload();
        }
    }

    /** The builder of {@link WeightedAdapters}: {@code set*} is required, {@code opt*} optional. */
    public static final class Builder {

        private List<Adapter> adapters;
        private double[] weights;
        private Combination combination;
        private int rank;

        Builder() {}

        /**
         * Sets the adapters to combine.
         *
         * @param adapters at least one, all LoRA adapters of one base model
         * @return this builder
         */
        public Builder setAdapters(List<Adapter> adapters) {
            this.adapters = List.copyOf(adapters);
            return this;
        }

        /**
         * Sets the weight {@code w_i} of each adapter.
         *
         * @param weights one per adapter, in order
         * @return this builder
         */
        public Builder setWeights(double... weights) {
            this.weights = weights.clone();
            return this;
        }

        /**
         * Sets how the adapters are combined.
         *
         * @param combination {@code LINEAR}, {@code CAT} or {@code SVD}
         * @return this builder
         */
        public Builder setCombination(Combination combination) {
            this.combination = combination;
            return this;
        }

        /**
         * Sets the rank of an {@code SVD} combination.
         *
         * @param rank an integer &gt; 0; default the largest {@code r} of the inputs
         * @return this builder
         */
        public Builder optRank(int rank) {
            if (rank <= 0) {
                throw new IllegalArgumentException("rank must be an integer > 0, got " + rank);
            }
            this.rank = rank;
            return this;
        }

        /**
         * Checks the inputs and combines them.
         *
         * @return the combined adapter
         * @throws IllegalArgumentException naming the adapters and values at fault: weights not
         *     one per adapter, {@code linear} with different ranks or a negative {@code w_i s_i},
         *     a rank given to another combination than {@code svd}, different base models (a
         *     {@code base_model_name_or_path} or a layer's shape that differs), or adapters that
         *     train biases or {@code trainable_modules}; adapters with no layer in common combine
         *     over the union of their targets, as in HF
         */
        public WeightedAdapters build() {
            check();
            int newRank = newRank();
            Set<String> paths = new LinkedHashSet<>();
            for (Adapter adapter : adapters) {
                paths.addAll(adapter.getLayers().keySet());
            }
            Map<String, Factors> combined = new LinkedHashMap<>();
            for (String path : paths) {
                combined.put(path, combine(path, newRank));
            }
            LoRAConfig first = adapters.get(0).getConfig();
            LoRAConfig config =
                    first.toBuilder()
                            .setTargetModules(new ArrayList<>(paths))
                            .optR(newRank)
                            .optLoraAlpha(newRank)
                            .optUseRslora(false)
                            .build();
            return new WeightedAdapters(config, combined);
        }

        private void check() {
            if (adapters == null || adapters.isEmpty()) {
                throw new IllegalArgumentException("no adapters to combine: give at least one");
            }
            if (weights == null || weights.length != adapters.size()) {
                throw new IllegalArgumentException(
                        (weights == null ? 0 : weights.length)
                                + " weights for "
                                + adapters.size()
                                + " adapters "
                                + names()
                                + ": give one weight per adapter");
            }
            if (combination == null) {
                throw new IllegalArgumentException("no combination: set linear, cat or svd");
            }
            if (rank > 0 && combination != Combination.SVD) {
                throw new IllegalArgumentException(
                        "a rank applies to the svd combination only, not " + combination);
            }
            for (Adapter adapter : adapters) {
                LoRAConfig c = adapter.getConfig();
                if (c.getTrainableBias() != TrainableBias.NONE
                        || !c.getTrainableModules().isEmpty()) {
                    throw new IllegalArgumentException(
                            "adapter "
                                    + adapter.getName()
                                    + " trains biases or trainable_modules (bias "
                                    + c.getTrainableBias()
                                    + ", trainable_modules "
                                    + c.getTrainableModules()
                                    + "), which have no weighted combination; combine adapters"
                                    + " of lora_A and lora_B only");
                }
            }
            checkSameBase();
            if (combination == Combination.LINEAR) {
                checkLinear();
            }
        }

        private void checkSameBase() {
            Adapter first = adapters.get(0);
            for (Adapter adapter : adapters) {
                String a = first.getConfig().getBaseModelNameOrPath();
                String b = adapter.getConfig().getBaseModelNameOrPath();
                if (a != null && b != null && !a.equals(b)) {
                    throw new IllegalArgumentException(
                            "adapters "
                                    + first.getName()
                                    + " and "
                                    + adapter.getName()
                                    + " adapt different base models (base_model_name_or_path "
                                    + a
                                    + " and "
                                    + b
                                    + "): combine adapters of one base model");
                }
            }
            Map<String, Adapter> owner = new LinkedHashMap<>();
            for (Adapter adapter : adapters) {
                for (Map.Entry<String, Factors> layer : adapter.getLayers().entrySet()) {
                    Adapter seen = owner.putIfAbsent(layer.getKey(), adapter);
                    if (seen == null) {
                        continue;
                    }
                    Factors f = seen.getLayers().get(layer.getKey());
                    Factors g = layer.getValue();
                    if (f.in != g.in || f.out != g.out) {
                        throw new IllegalArgumentException(
                                "layer "
                                        + layer.getKey()
                                        + " is [out "
                                        + f.out
                                        + ", in "
                                        + f.in
                                        + "] in adapter "
                                        + seen.getName()
                                        + " but [out "
                                        + g.out
                                        + ", in "
                                        + g.in
                                        + "] in "
                                        + adapter.getName()
                                        + ": the adapters are of different base models");
                    }
                }
            }
        }

        private void checkLinear() {
            Adapter first = adapters.get(0);
            for (int i = 0; i < adapters.size(); i++) {
                Adapter adapter = adapters.get(i);
                if (adapter.getConfig().getR() != first.getConfig().getR()) {
                    throw new IllegalArgumentException(
                            "the linear combination needs adapters of one r, but "
                                    + first.getName()
                                    + " has r = "
                                    + first.getConfig().getR()
                                    + " and "
                                    + adapter.getName()
                                    + " r = "
                                    + adapter.getConfig().getR()
                                    + ": use cat or svd instead");
                }
                double product = weights[i] * adapter.getConfig().getScaling();
                if (product < 0) {
                    throw new IllegalArgumentException(
                            "the linear combination scales A and B by sqrt(weight * scaling), but"
                                    + " adapter "
                                    + adapter.getName()
                                    + " has weight "
                                    + weights[i]
                                    + ": use a weight >= 0, or cat or svd for negative weights");
                }
            }
        }

        private String names() {
            List<String> names = new ArrayList<>();
            for (Adapter adapter : adapters) {
                names.add(adapter.getName());
            }
            return names.toString();
        }

        private int newRank() {
            int max = 0;
            int sum = 0;
            for (Adapter adapter : adapters) {
                max = Math.max(max, adapter.getConfig().getR());
                sum += adapter.getConfig().getR();
            }
            switch (combination) {
                case LINEAR:
                    return max;
                case CAT:
                    return sum;
                default:
                    return rank > 0 ? rank : max;
            }
        }

        private Factors combine(String path, int newRank) {
            List<Factors> parts = new ArrayList<>();
            List<Double> factors = new ArrayList<>();
            for (int i = 0; i < adapters.size(); i++) {
                Factors f = adapters.get(i).getLayers().get(path);
                if (f != null) {
                    parts.add(f);
                    factors.add(weights[i] * adapters.get(i).getConfig().getScaling());
                }
            }
            switch (combination) {
                case LINEAR:
                    return FactorMath.linear(parts, factors);
                case CAT:
                    return FactorMath.cat(parts, factors, newRank);
                default:
                    return FactorMath.svd(parts, factors, newRank);
            }
        }
    }
}
