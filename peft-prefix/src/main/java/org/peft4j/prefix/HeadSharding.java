package org.peft4j.prefix;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

import org.peft4j.core.parallel.AxisSharding;
import org.peft4j.core.parallel.ShardGroup;
import org.peft4j.core.parallel.Sharding;

/**
 * A prefix tensor split by key/value heads. Its prefix axis, of width {@code 2 L kvHeads d}, is
 * laid out as {@code [2 L, kvHeads, d]} (a key and a value block per layer, each of every head);
 * rank {@code k} holds heads {@code [k kvHeads/T, (k+1) kvHeads/T)} of every block, the caches of
 * its own attention heads.
 */
final class HeadSharding implements Sharding {

    private final ShardGroup group;
    private final int axis;
    private final long blocks;
    private final long headDim;

    /** The same split seen with the prefix axis as {@code [blocks, heads, d]}: contiguous heads. */
    private final AxisSharding byHead;

    /**
     * Creates the sharding.
     *
     * @param group the ranks
     * @param axis the prefix axis of the tensor
     * @param blocks {@code 2 L}
     * @param headDim {@code d}
     */
    HeadSharding(ShardGroup group, int axis, long blocks, long headDim) {
        this.group = group;
        this.axis = axis;
        this.blocks = blocks;
        this.headDim = headDim;
        this.byHead = new AxisSharding(group, axis + 1);
    }

    @Override
    public int getDegree() {
        return group.getDegree();
    }

    @Override
    public int getRank() {
        return group.getRank();
    }

    @Override
    public Shape fullShape(Shape local) {
        long[] dims = local.getShape().clone(); // DJL's Shape hands out its own array
        dims[axis] *= group.getDegree();
        return new Shape(dims);
    }

    @Override
    public NDArray localPart(NDArray full) {
        Shape shape = full.getShape();
        long heads = heads(shape);
        if (heads % group.getDegree() != 0) {
            throw new IllegalArgumentException(
                    heads
                            + " key/value heads cannot be split across "
                            + group.getDegree()
                            + " ranks");
        }
        try (NDArray split = full.reshape(split(shape, heads))) {
            return byHead.localPart(split).reshape(joined(shape, heads / group.getDegree()));
        }
    }

    @Override
    public NDArray gather(NDArray local) {
        Shape shape = local.getShape();
        long heads = heads(shape);
        try (NDArray split = local.reshape(split(shape, heads))) {
            return byHead.gather(split).reshape(joined(shape, heads * group.getDegree()));
        }
    }

    @Override
    public void barrier() {
        group.barrier();
    }

    private long heads(Shape shape) {
        long width = shape.get(axis);
        if (width % (blocks * headDim) != 0) {
            throw new IllegalArgumentException(
                    "axis "
                            + axis
                            + " of a prefix tensor of shape "
                            + shape
                            + " is not "
                            + blocks
                            + " blocks of whole heads of size "
                            + headDim);
        }
        return width / (blocks * headDim);
    }

    /** The shape with the prefix axis as {@code [blocks, heads, d]}. */
    private Shape split(Shape shape, long heads) {
        return shape.slice(0, axis)
                .addAll(new Shape(blocks, heads, headDim))
                .addAll(shape.slice(axis + 1));
    }

    /** The shape with the prefix axis holding {@code heads} heads per block. */
    private Shape joined(Shape shape, long heads) {
        return shape.slice(0, axis).add(blocks * heads * headDim).addAll(shape.slice(axis + 1));
    }
}
