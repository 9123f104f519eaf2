package org.peft4j.parallel.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.List;

/**
 * Open MPI collectives on two ranks, against arrays computed independently on each rank: rank
 * {@code r}'s input is {@code f(r)}, so every rank knows every other rank's input.
 *
 * <p>Every comparison is exact, on any machine: the inputs are integers below {@code 2^11}, which
 * every type tested holds exactly and adds exactly in any order (float32 and float16 are exact up
 * to {@code 2^24} and {@code 2^11}), and gather and broadcast copy bytes.
 */
@Tag("mpi")
class CollectivesMpiTest {

    private static final List<DataType> TYPES =
            List.of(DataType.FLOAT32, DataType.FLOAT64, DataType.INT32, DataType.INT64);
    private static final List<Shape> SHAPES =
            List.of(new Shape(), new Shape(5), new Shape(3, 4), new Shape(2, 3, 4));

    private final Communicator world = MpiCommunicator.world();
    private NDManager manager;

    @BeforeEach
    void open() {
        assertEquals(2, world.getWorldSize(), "run with mpirun -np 2");
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    /** Rank r's input: element i is (i + 1) * (r + 1) + 100 r, as doubles. */
    private static double[] input(int rank, long size) {
        double[] values = new double[(int) size];
        for (int i = 0; i < values.length; i++) {
            values[i] = (i + 1) * (rank + 1) + 100.0 * rank;
        }
        return values;
    }

    private NDArray array(double[] values, Shape shape, DataType type) {
        return manager.create(values, shape).toType(type, false);
    }

    private static double[] values(NDArray array) {
        return array.toType(DataType.FLOAT64, false).toDoubleArray();
    }

    @Test
    void allReduceSumsEveryRanksArray() {
        for (DataType type : TYPES) {
            for (Shape shape : SHAPES) {
                NDArray a = array(input(world.getRank(), shape.size()), shape, type);
                world.allReduceSum(a);
                double[] expected = new double[(int) shape.size()];
                for (int r = 0; r < world.getWorldSize(); r++) {
                    double[] each = input(r, shape.size());
                    for (int i = 0; i < expected.length; i++) {
                        expected[i] += each[i];
                    }
                }
                assertEquals(shape, a.getShape());
                assertEquals(type, a.getDataType());
                assertArrayEquals(
                        expected, values(a), 0.0, type + " " + shape + ": integer sums are exact");
            }
        }
    }

    @Test
    void numbersAreSummedOneByOneAndSeveralAtOnce() {
        double[] mine = input(world.getRank(), 3);
        double[] expected = new double[3];
        for (int r = 0; r < world.getWorldSize(); r++) {
            double[] theirs = input(r, 3);
            for (int i = 0; i < 3; i++) {
                expected[i] += theirs[i];
            }
        }
        assertArrayEquals(expected, world.sums(mine));
        assertArrayEquals(input(world.getRank(), 3), mine, "the input is left as it was");
        assertEquals(expected[2], world.sum(mine[2]));
        assertArrayEquals(mine, SingleProcess.INSTANCE.sums(mine));
    }

    @Test
    void allReduceOfANonContiguousViewWritesBack() {
        NDArray base = array(input(world.getRank(), 12), new Shape(3, 4), DataType.FLOAT32);
        NDArray transposed = base.transpose();
        world.allReduceSum(transposed);
        double[] expected = new double[12];
        for (int r = 0; r < 2; r++) {
            double[] each = input(r, 12);
            for (int i = 0; i < 12; i++) {
                expected[i] += each[i];
            }
        }
        assertArrayEquals(expected, values(transposed.transpose()), 0.0, "integer sums are exact");
    }

    @Test
    void allGatherConcatenatesInRankOrder() {
        for (DataType type : TYPES) {
            Shape shape = new Shape(2, 3);
            for (int axis : new int[] {0, 1, -1}) {
                NDArray local = array(input(world.getRank(), 6), shape, type);
                NDArray gathered = world.allGather(local, axis);
                NDArray expected =
                        array(input(0, 6), shape, type)
                                .concat(array(input(1, 6), shape, type), axis);
                assertEquals(expected.getShape(), gathered.getShape(), type + " axis " + axis);
                assertEquals(type, gathered.getDataType());
                assertArrayEquals(values(expected), values(gathered), 0.0, "gathering copies");
            }
        }
    }

    @Test
    void broadcastCopiesTheRootsArray() {
        for (DataType type : TYPES) {
            for (int root = 0; root < 2; root++) {
                NDArray a = array(input(world.getRank(), 12), new Shape(3, 4), type);
                world.broadcast(a, root);
                assertArrayEquals(
                        input(root, 12), values(a), 0.0, type + " root " + root + ": a copy");
            }
        }
    }

    @Test
    void float16MovesAsBytesButCannotBeSummed() {
        NDArray a = array(input(world.getRank(), 6), new Shape(2, 3), DataType.FLOAT16);
        NDArray gathered = world.allGather(a, 0);
        assertEquals(new Shape(4, 3), gathered.getShape());
        assertArrayEquals(
                concat(input(0, 6), input(1, 6)),
                values(gathered),
                0.0,
                "small integers, copied as bytes");
        world.broadcast(a, 1);
        assertArrayEquals(input(1, 6), values(a), 0.0, "copied as bytes");
        IllegalArgumentException error =
                assertThrows(IllegalArgumentException.class, () -> world.allReduceSum(a));
        assertTrue(error.getMessage().contains("float16"), error.getMessage());
    }

    @Test
    void splitFormsGroupsByColor() {
        try (Communicator alone = world.split(world.getRank(), 0)) {
            assertEquals(1, alone.getWorldSize());
            assertEquals(0, alone.getRank());
            NDArray a = array(input(world.getRank(), 4), new Shape(4), DataType.FLOAT32);
            alone.allReduceSum(a);
            assertArrayEquals(
                    input(world.getRank(), 4), values(a), 0.0, "a sum over one rank is the input");
        }
        try (Communicator reversed = world.split(0, -world.getRank())) {
            assertEquals(2, reversed.getWorldSize());
            assertEquals(1 - world.getRank(), reversed.getRank());
        }
        world.barrier();
    }

    @Test
    void badArgumentsFailBeforeAnyCommunication() {
        NDArray a = manager.zeros(new Shape(2));
        assertThrows(IllegalArgumentException.class, () -> world.broadcast(a, 2));
        assertThrows(IllegalArgumentException.class, () -> world.allGather(a, 1));
        NDArray bool = manager.create(new boolean[] {true});
        assertThrows(IllegalArgumentException.class, () -> world.allReduceSum(bool));
    }

    private static double[] concat(double[] a, double[] b) {
        double[] out = new double[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
