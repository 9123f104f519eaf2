package org.peft4j.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.io.SafetensorsReader;
import org.peft4j.core.parallel.ShardedCheckpoint;
import org.peft4j.core.parallel.Sharding;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov and Hutter, 2019) over named parameters, with its moments in arrays that {@link
 * #save(Path)} writes and {@link #load(Path)} restores, so that a resumed run continues exactly.
 *
 * <pre>
 *   g = grad * scale
 *   m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
 *   p = p (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * </pre>
 *
 * <p>The update is the engine's fused Adam kernel (one native call per parameter) in its AdamW
 * form. Parameters that did not get a gradient in a step are left alone. Gradients are zeroed after
 * the update (DJL does not zero them when a gradient collector opens). The moments live beside the
 * parameters, on their manager, until {@link #close()}.
 */
public final class AdamW implements AutoCloseable {

    private final Map<String, Parameter> parameters;
    private final Map<String, NDArray> first = new LinkedHashMap<>();
    private final Map<String, NDArray> second = new LinkedHashMap<>();
    private final double beta1;
    private final double beta2;
    private final double epsilon;
    private final double weightDecay;
    private int steps;

    /**
     * Creates the optimizer with zero moments.
     *
     * @param parameters the trainable parameters by name
     * @param beta1 the first moment's decay, e.g. 0.9
     * @param beta2 the second moment's decay, e.g. 0.999
     * @param epsilon added to the denominator, e.g. 1e-8
     * @param weightDecay decoupled weight decay, e.g. 0 or 0.01
     */
    public AdamW(
            Map<String, Parameter> parameters,
            double beta1,
            double beta2,
            double epsilon,
            double weightDecay) {
        this.parameters = new LinkedHashMap<>(parameters);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.epsilon = epsilon;
        this.weightDecay = weightDecay;
        parameters.forEach(
                (name, p) -> {
                    first.put(name, p.getArray().zerosLike());
                    second.put(name, p.getArray().zerosLike());
                });
    }

    /**
     * Returns how many updates were made.
     *
     * @return {@code t}
     */
    public int getSteps() {
        return steps;
    }

    /**
     * Returns the global L2 norm of the current gradients.
     *
     * @return {@code sqrt(sum of g^2)} over every parameter with a gradient
     */
    public double gradientNorm() {
        double sum = 0;
        for (Parameter p : parameters.values()) {
            NDArray w = p.getArray();
            if (w.hasGradient()) {
                try (NDArray g = w.getGradient();
                        NDArray squared = g.square();
                        NDArray total = squared.sum()) {
                    sum += total.getFloat();
                }
            }
        }
        return Math.sqrt(sum);
    }

    /**
     * Updates every parameter from its gradient, then zeroes the gradients.
     *
     * @param learningRate this step's rate
     * @param scale multiplies every gradient first (clipping)
     */
    public void step(double learningRate, double scale) {
        steps++;
        // The kernel decays the moments with the betas rounded to float32 (1 - 0.999f differs
        // from 1 - 0.999 by 1.3e-5 relative), so the bias corrections use those same betas: then
        // m / (1 - beta1^t) is exactly a weighted mean of the gradients.
        double kernelBeta1 = (float) beta1;
        double kernelBeta2 = (float) beta2;
        double correction1 = 1 - Math.pow(kernelBeta1, steps);
        double correction2 = 1 - Math.pow(kernelBeta2, steps);
        // The engine's fused update computes w -= rate' m / (sqrt(v) + eps') with rate' = lr
        // sqrt(c2) / c1; eps' = eps sqrt(c2) makes that exactly lr m^ / (sqrt(v^) + eps).
        float rate = (float) (learningRate * Math.sqrt(correction2) / correction1);
        float eps = (float) (epsilon * Math.sqrt(correction2));
        for (Map.Entry<String, Parameter> entry : parameters.entrySet()) {
            NDArray w = entry.getValue().getArray();
            if (!w.hasGradient()) {
                continue;
            }
            try (NDArray g = w.getGradient()) {
                NDList state =
                        new NDList(w, g, first.get(entry.getKey()), second.get(entry.getKey()));
                w.getNDArrayInternal()
                        .adamUpdate(
                                state,
                                new NDList(w),
                                (float) learningRate,
                                rate,
                                (float) weightDecay,
                                (float) scale,
                                -1f,
                                (float) kernelBeta1,
                                (float) kernelBeta2,
                                eps,
                                false,
                                true);
            }
        }
    }

    /** Frees the moments. */
    @Override
    public void close() {
        first.values().forEach(NDArray::close);
        second.values().forEach(NDArray::close);
    }

    /**
     * Writes the moments and step count.
     *
     * @param file a safetensors file; {@code exp_avg.<name>}, {@code exp_avg_sq.<name>}, and the
     *     step in the metadata
     * @throws IOException if writing fails
     */
    public void save(Path file) throws IOException {
        save(file, Map.of());
    }

    /**
     * Writes the moments and step count of a model that may be split across ranks: the moments of a
     * split parameter are split as the parameter is, so they are gathered and rank 0 writes the
     * file a single process writes (a collective: every rank of the group calls it).
     *
     * @param file the merged file
     * @param shardings the sharding of each split parameter, by parameter name
     * @throws IOException if writing fails
     */
    public void save(Path file, Map<String, Sharding> shardings) throws IOException {
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        first.forEach((name, m) -> tensors.put("exp_avg." + name, m));
        second.forEach((name, v) -> tensors.put("exp_avg_sq." + name, v));
        ShardedCheckpoint.save(
                file.toAbsolutePath().getParent(),
                file.getFileName().toString(),
                tensors,
                Map.of("step", Integer.toString(steps)),
                momentShardings(shardings),
                true,
                () -> {});
    }

    /**
     * Restores what {@link #save(Path)} wrote.
     *
     * @param file the optimizer file of a checkpoint
     * @throws IOException if the file cannot be read, or its moments do not match the parameters
     *     (names and shapes are checked)
     */
    public void load(Path file) throws IOException {
        load(file, Map.of());
    }

    /**
     * Restores what {@link #save(Path, Map)} wrote into an optimizer over a model that may be split
     * across ranks: each rank takes its part of the moments of split parameters.
     *
     * @param file the optimizer file of a checkpoint
     * @param shardings the sharding of each split parameter, by parameter name
     * @throws IOException if the file cannot be read, or its moments do not match the parameters
     */
    public void load(Path file, Map<String, Sharding> shardings) throws IOException {
        // the step first: a file without one must fail before any moment is overwritten
        int savedSteps = savedSteps(file);
        Map<String, NDArray> targets = new LinkedHashMap<>();
        first.forEach((name, m) -> targets.put("exp_avg." + name, m));
        second.forEach((name, v) -> targets.put("exp_avg_sq." + name, v));
        Map<String, Shape> shapes = new LinkedHashMap<>();
        targets.forEach((key, array) -> shapes.put(key, array.getShape()));
        if (!targets.isEmpty()) {
            NDManager owner = targets.values().iterator().next().getManager();
            try (NDManager scratch = owner.newSubManager()) {
                Map<String, NDArray> loaded =
                        ShardedCheckpoint.load(
                                file.toAbsolutePath().getParent(),
                                file.getFileName().toString(),
                                shapes,
                                momentShardings(shardings),
                                scratch,
                                "the trained parameters (the checkpoint belongs to another"
                                        + " adapter)");
                loaded.forEach((key, value) -> NativeArrays.copyInto(targets.get(key), value));
            }
        }
        steps = savedSteps;
    }

    private static int savedSteps(Path file) throws IOException {
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            String step = reader.getMetadata().get("step");
            if (step == null) {
                throw new IOException(
                        file + ": no \"step\" in the metadata; this is not an optimizer file");
            }
            try {
                return Integer.parseInt(step);
            } catch (NumberFormatException e) {
                throw new IOException(file + ": the step \"" + step + "\" is not a number", e);
            }
        }
    }

    private Map<String, Sharding> momentShardings(Map<String, Sharding> shardings) {
        Map<String, Sharding> out = new LinkedHashMap<>();
        shardings.forEach(
                (name, sharding) -> {
                    out.put("exp_avg." + name, sharding);
                    out.put("exp_avg_sq." + name, sharding);
                });
        return out;
    }
}
