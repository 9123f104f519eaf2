package org.peft4j.lora;

import static ai.djl.nn.core.Linear.linear;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.ParameterStore;

import org.peft4j.core.Scalars;

import java.util.List;
import java.util.Map;

/**
 * The products of a {@link LoRALinear}'s forward pass: {@code x W^T + b + sum_i s_i (dropout_i(x)
 * A_i^T) B_i^T} over the branches that run, without ever forming {@code B A} in training, and in
 * a mixed batch the same per group of rows. {@code W: [out, in]} is the layer's (or this rank's
 * part of it), {@code x: [..., in]}.
 */
final class LoRAProducts {

    private LoRAProducts() {}

    /**
     * Runs each adapter's rows of a mixed batch together, then puts the rows back in batch order:
     * one gather per group and one for the order, instead of a full pass per adapter. A batch
     * sorted by adapter ({@link AdapterRows#isGrouped()}) takes slices and needs no reordering.
     * The caller has checked that {@code x} has the batch's rows along axis 0.
     */
    static NDArray mixed(
            ParameterStore ps,
            NDArray x,
            NDArray w,
            NDArray b,
            AdapterRows rows,
            Map<String, LoRABranch> branches) {
        if (rows.getGroups().keySet().stream().noneMatch(branches::containsKey)) {
            // no row's adapter adapts this layer: one base product over the whole batch
            return compute(ps, x, w, b, List.of(), false);
        }
        if (rows.getGroups().size() == 1) {
            String only = rows.getGroups().keySet().iterator().next();
            return compute(ps, x, w, b, List.of(branches.get(only)), false);
        }
        if (rows.isGrouped()) {
            return sliced(ps, x, w, b, rows, branches);
        }
        NDManager manager = x.getManager();
        NDList parts = new NDList();
        for (Map.Entry<String, long[]> group : rows.getGroups().entrySet()) {
            LoRABranch branch = branches.get(group.getKey());
            List<LoRABranch> own = branch == null ? List.of() : List.of(branch);
            NDArray groupRows = x.get(new NDIndex("{}", manager.create(group.getValue())));
            parts.add(compute(ps, groupRows, w, b, own, false));
        }
        NDArray concatenated = NDArrays.concat(parts, 0);
        return concatenated.get(new NDIndex("{}", manager.create(rows.getRestoringOrder())));
    }

    /**
     * A batch sorted by adapter: one base product over every row, then each group's branch added
     * into its slice of the result, {@code y[g] = y[g] + s (x[g] A^T) B^T} as one
     * matrix-multiply-add per group. Measured against per-group base products and a
     * concatenation (docs/performance.md), this saves a pass over the output and the split of
     * the base product.
     */
    private static NDArray sliced(
            ParameterStore ps,
            NDArray x,
            NDArray w,
            NDArray b,
            AdapterRows rows,
            Map<String, LoRABranch> branches) {
        NDArray y = compute(ps, x, w, b, List.of(), false);
        long in = x.getShape().get(x.getShape().dimension() - 1);
        for (Map.Entry<String, long[]> group : rows.getGroups().entrySet()) {
            LoRABranch branch = branches.get(group.getKey());
            if (branch == null) {
                continue;
            }
            long[] indices = group.getValue();
            NDIndex where = new NDIndex(indices[0] + ":" + (indices[indices.length - 1] + 1));
            NDArray base = y.get(where);
            NDArray flat = x.get(where).reshape(-1, in);
            NDArray sum =
                    branchTerm(ps, branch, flat, base.reshape(flat.getShape().get(0), -1), false);
            y.set(where, sum.reshape(base.getShape()));
        }
        return y;
    }

    /**
     * Computes {@code x W^T + b + sum_i s_i (dropout_i(x) A_i^T) B_i^T} over the given branches:
     * in training as one matrix-multiply-add whose addend holds the branches, in inference over
     * many rows through the effective weight.
     */
    static NDArray compute(
            ParameterStore ps,
            NDArray x,
            NDArray w,
            NDArray b,
            List<LoRABranch> running,
            boolean training) {
        if (running.isEmpty()) {
            return linear(x, w, b).singletonOrThrow();
        }
        Shape shape = x.getShape();
        long in = shape.get(shape.dimension() - 1);
        long outFeatures = w.getShape().get(0);
        Device device = x.getDevice();
        if (!training
                && running.size() * (x.size() / in) * (in + 2 * outFeatures)
                        > 2 * in * outFeatures) {
            return linear(x, effectiveWeight(ps, w, running, device, x.getManager()), b)
                    .singletonOrThrow();
        }
        // Rows flattened so that the base product can take the LoRA terms as its addend:
        // y = x W^T + (sum_i s_i (x A_i^T) B_i^T + b) in one matrix-multiply-add, each scale
        // applied to an [rows, r] intermediate, and no separate pass over [rows, out] per add.
        NDArray flat = x.reshape(-1, in);
        NDArray addend = b;
        for (LoRABranch branch : running) {
            addend = branchTerm(ps, branch, flat, addend, training);
        }
        NDArray y = linear(flat, w, addend).singletonOrThrow();
        return y.reshape(shape.slice(0, shape.dimension() - 1).add(outFeatures));
    }

    /** Returns {@code addend + s (dropout(x) A^T) B^T} for one branch, {@code x: [rows, in]}. */
    private static NDArray branchTerm(
            ParameterStore ps, LoRABranch branch, NDArray x, NDArray addend, boolean training) {
        Device device = x.getDevice();
        NDArray a = ps.getValue(branch.getLoraA(), device, training);
        NDArray b = ps.getValue(branch.getLoraB(), device, training);
        float dropout = branch.getDropout();
        NDArray h = dropout > 0 ? Dropout.dropout(x, dropout, training).singletonOrThrow() : x;
        if (h.getDataType() != a.getDataType()) {
            h = h.toType(a.getDataType(), false);
        }
        NDArray down = Scalars.mul(linear(h, a).singletonOrThrow(), branch.getScaling());
        if (b.getDataType() == x.getDataType()) {
            return linear(down, b, addend).singletonOrThrow();
        }
        // A float16 adapter computes its branch in float16; the base bias and the other branches
        // are added after the cast back, so that they keep the base layer's precision.
        NDArray term = linear(down, b).singletonOrThrow().toType(x.getDataType(), false);
        return addend == null ? term : term.add(addend);
    }

    /**
     * Returns {@code W + sum_i s_i B_i A_i} for an inference pass over many rows, in one
     * matrix-multiply-add per branch. Forming it costs a pass over {@code W} and an {@code [out, r]
     * x [r, in]} product per branch; each branch costs a second read of the {@code rows x in} input
     * and a {@code rows x out} intermediate written and read again. Past {@code k rows (in + 2 out)
     * > 2 in out} for {@code k} branches (one branch on a 512 x 512 projection: over 341 rows) the
     * weight is cheaper. {@code W} itself is untouched, so the adapters stay separate.
     */
    private static NDArray effectiveWeight(
            ParameterStore ps,
            NDArray w,
            List<LoRABranch> running,
            Device device,
            NDManager scratch) {
        NDArray effective = w;
        for (LoRABranch branch : running) {
            NDArray a = ps.getValue(branch.getLoraA(), device, false);
            NDArray b = ps.getValue(branch.getLoraB(), device, false);
            NDArray next;
            try (NDArray detachedA = a.stopGradient();
                    NDArray detachedB = b.stopGradient()) {
                if (a.getDataType() == w.getDataType()) {
                    try (NDArray scaledB = Scalars.mul(detachedB, branch.getScaling());
                            NDArray columnsOfA = detachedA.transpose()) {
                        next = linear(scaledB, columnsOfA, effective).singletonOrThrow();
                    }
                } else {
                    try (NDArray delta =
                            LoRAWeights.delta(
                                    detachedA, detachedB, branch.getScaling(), w.getDataType())) {
                        next = effective.add(delta);
                    }
                }
            }
            if (effective != w) {
                effective.close();
            }
            effective = next;
        }
        effective.attach(scratch); // freed with the pass's other arrays, not with W's owner
        return effective;
    }
}
