package org.peft4j.parallel.comm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;

/**
 * Backends gather every rank's part one after another, {@code [ranks, ...part]}; this turns that
 * into the concatenation along the asked axis.
 */
final class GatherLayout {

    private GatherLayout() {}

    /**
     * Checks and normalises an axis.
     *
     * @param part the shape of one rank's part
     * @param axis the axis, negative counting from the end
     * @return the axis in {@code [0, dimension)}
     * @throws IllegalArgumentException if the axis lies outside the shape
     */
    static int axis(Shape part, int axis) {
        int dims = part.dimension();
        int dim = axis < 0 ? axis + dims : axis;
        if (dim < 0 || dim >= Math.max(1, dims)) {
            throw new IllegalArgumentException(
                    "axis " + axis + " outside an array of shape " + part);
        }
        return dim;
    }

    /**
     * Returns the shape that holds every rank's part one after another.
     *
     * @param part one rank's shape
     * @param ranks the number of ranks
     * @return {@code [ranks, ...part]}
     */
    static Shape stacked(Shape part, int ranks) {
        return new Shape(ranks).addAll(part);
    }

    /**
     * Concatenates the stacked parts along an axis.
     *
     * @param stacked {@code [ranks, ...part]}, closed if a new array is made
     * @param part one rank's shape
     * @param dim the normalised axis
     * @return the concatenation
     */
    static NDArray alongAxis(NDArray stacked, Shape part, int dim) {
        int ranks = (int) stacked.getShape().get(0);
        if (dim == 0) {
            return stacked.reshape(
                    new Shape(ranks * (part.dimension() == 0 ? 1 : part.get(0)))
                            .addAll(part.slice(Math.min(1, part.dimension()))));
        }
        NDList parts = new NDList(ranks);
        for (int r = 0; r < ranks; r++) {
            parts.add(stacked.get(r));
        }
        NDArray out = NDArrays.concat(parts, dim);
        stacked.close();
        return out;
    }
}
