package org.peft4j.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.peft4j.parallel.comm.SingleProcess;

/** The layout of a single process, and the error of a degree the world cannot hold. */
class ParallelismTest {

    @Test
    void oneProcessIsOneRankOfEverything() {
        Parallelism layout = Parallelism.of(SingleProcess.INSTANCE, 1);
        assertEquals(1, layout.getTensorParallel().getDegree());
        assertEquals(1, layout.getDataParallel().getWorldSize());
        assertTrue(layout.isLeader());
    }

    @Test
    void aDegreeThatDoesNotDivideTheWorldSaysHowToStartTheRun() {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> Parallelism.of(SingleProcess.INSTANCE, 2));
        assertTrue(e.getMessage().contains("tensor_parallel_degree 2"), e.getMessage());
        assertTrue(e.getMessage().contains("mpirun -np"), e.getMessage());
        assertThrows(
                IllegalArgumentException.class, () -> Parallelism.of(SingleProcess.INSTANCE, 0));
    }
}
