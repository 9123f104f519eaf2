package org.peft4j.models.llama;

import ai.djl.nn.core.Linear;

import org.peft4j.parallel.ColumnParallelLinear;
import org.peft4j.parallel.RowParallelLinear;
import org.peft4j.parallel.TensorParallel;

/**
 * Llama's linear layers, whole in a group of one process, otherwise split as Megatron and PaddleNLP
 * split them: q/k/v/gate/up by output features (column-parallel, so each rank holds whole heads),
 * o/down by input features (row-parallel, summed across ranks).
 */
final class Projections {

    private final TensorParallel group;

    Projections(TensorParallel group) {
        this.group = group;
    }

    int degree() {
        return group.getDegree();
    }

    /** Returns this rank's share of a count the config has already checked is divisible. */
    int local(int count) {
        return count / group.getDegree();
    }

    /** A layer split by output features; {@code gather} concatenates the parts on every rank. */
    Linear column(long units, boolean bias, boolean gather) {
        if (group.getDegree() == 1) {
            return Linear.builder().setUnits(units).optBias(bias).build();
        }
        return ColumnParallelLinear.builder()
                .setGroup(group)
                .setUnits(units)
                .optBias(bias)
                .optGatherOutput(gather)
                .build();
    }

    /** A layer split by input features, its partial products summed across ranks. */
    Linear row(long units, boolean bias) {
        if (group.getDegree() == 1) {
            return Linear.builder().setUnits(units).optBias(bias).build();
        }
        return RowParallelLinear.builder().setGroup(group).setUnits(units).optBias(bias).build();
    }
}
