package org.peft4j.core.parallel;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

import org.peft4j.core.io.NativeArrays;

/**
 * A tensor split into equal contiguous parts along one axis, rank {@code k} holding part {@code k}:
 * rows of a column-parallel weight (axis 0), columns of a row-parallel one (axis 1).
 */
public final class AxisSharding implements Sharding {

    private final ShardGroup group;
    private final int axis;

    /**
     * Creates the sharding.
     *
     * @param group the ranks the tensor is split across
     * @param axis the split axis, non-negative
     */
    public AxisSharding(ShardGroup group, int axis) {
        if (axis < 0) {
            throw new IllegalArgumentException("axis must be >= 0, got " + axis);
        }
        this.group = group;
        this.axis = axis;
    }

    /**
     * Returns the split axis.
     *
     * @return the axis
     */
    public int getAxis() {
        return axis;
    }

    /** {@inheritDoc} */
    @Override
    public int getDegree() {
        return group.getDegree();
    }

    /** {@inheritDoc} */
    @Override
    public int getRank() {
        return group.getRank();
    }

    /** {@inheritDoc} */
    @Override
    public Shape fullShape(Shape local) {
        checkAxis(local);
        long[] dims = local.getShape().clone(); // DJL's Shape hands out its own array
        dims[axis] *= getDegree();
        return new Shape(dims);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray localPart(NDArray full) {
        Shape shape = full.getShape();
        checkAxis(shape);
        long total = shape.get(axis);
        if (total % getDegree() != 0) {
            throw new IllegalArgumentException(
                    "axis "
                            + axis
                            + " of a tensor of shape "
                            + shape
                            + " cannot be split evenly across "
                            + getDegree()
                            + " ranks");
        }
        long part = total / getDegree();
        long start = part * getRank();
        StringBuilder index = new StringBuilder();
        for (int d = 0; d < axis; d++) {
            index.append(":,");
        }
        index.append(start).append(':').append(start + part);
        try (NDArray view = full.get(new NDIndex(index.toString()))) {
            return NativeArrays.copyOf(view);
        }
    }

    /** {@inheritDoc} */
    @Override
    public NDArray gather(NDArray local) {
        return group.allGather(local, axis);
    }

    /** {@inheritDoc} */
    @Override
    public void barrier() {
        group.barrier();
    }

    private void checkAxis(Shape shape) {
        if (axis >= shape.dimension()) {
            throw new IllegalArgumentException(
                    "cannot split axis " + axis + " of a tensor of shape " + shape);
        }
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "AxisSharding(axis " + axis + ", " + group + ')';
    }
}
