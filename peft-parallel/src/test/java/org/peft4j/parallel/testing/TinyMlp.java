package org.peft4j.parallel.testing;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import org.peft4j.core.io.NativeArrays;
import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.core.tree.ReplaceableBlock;
import org.peft4j.parallel.ColumnParallelLinear;
import org.peft4j.parallel.RowParallelLinear;
import org.peft4j.parallel.TensorParallel;

/**
 * {@code y = relu(x Wup^T + bup) Wdown^T + bdown}, the shape of a transformer MLP: {@code up}
 * column-parallel and {@code down} row-parallel in a group of degree &gt; 1, plain layers
 * otherwise. Its weights are given whole and each rank keeps its part.
 */
public final class TinyMlp extends ReplaceableBlock {

    private final Slot<Linear> up;
    private final Slot<Linear> down;

    /**
     * Creates the model with the given full weights.
     *
     * @param group the tensor-parallel group; degree 1 for the single-process model
     * @param manager the manager owning the weights
     * @param full {Wup [F, H], bup [F], Wdown [H, F], bdown [H]}
     */
    public TinyMlp(TensorParallel group, NDManager manager, NDArray... full) {
        super((byte) 1);
        long hidden = full[0].getShape().get(1);
        long inner = full[0].getShape().get(0);
        boolean split = group.getDegree() > 1;
        up =
                addSlot(
                        "up",
                        Linear.class,
                        split
                                ? ColumnParallelLinear.builder()
                                        .setGroup(group)
                                        .setUnits(inner)
                                        .build()
                                : Linear.builder().setUnits(inner).build());
        down =
                addSlot(
                        "down",
                        Linear.class,
                        split
                                ? RowParallelLinear.builder()
                                        .setGroup(group)
                                        .setUnits(hidden)
                                        .build()
                                : Linear.builder().setUnits(hidden).build());
        initialize(manager, DataType.FLOAT32, new Shape(1, hidden));
        NDArray wUp = split ? new AxisSharding(group, 0).localPart(full[0]) : full[0];
        NDArray bUp = split ? new AxisSharding(group, 0).localPart(full[1]) : full[1];
        NDArray wDown = split ? new AxisSharding(group, 1).localPart(full[2]) : full[2];
        NativeArrays.copyInto(up.get().getParameters().get("weight").getArray(), wUp);
        NativeArrays.copyInto(up.get().getParameters().get("bias").getArray(), bUp);
        NativeArrays.copyInto(down.get().getParameters().get("weight").getArray(), wDown);
        NativeArrays.copyInto(down.get().getParameters().get("bias").getArray(), full[3]);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray h = up.get().forward(ps, inputs, training).head();
        return down.get().forward(ps, new NDList(Activation.relu(h)), training);
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... shapes) {
        up.get().initialize(manager, dataType, shapes);
        Shape inner = up.get().getOutputShapes(shapes)[0];
        down.get().initialize(manager, dataType, inner);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return down.get().getOutputShapes(up.get().getOutputShapes(inputShapes));
    }
}
