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
        assertTrue(
                e.getMessage()
                        .startsWith(
                                "a tensor-parallel degree of 2 must divide the number of"
                                        + " processes, 1 (not started by mpirun?)"),
                e.getMessage());
        assertTrue(e.getMessage().contains("mpirun -np"), e.getMessage());
    }

    @Test
    void aDegreeBelowOneIsRefusedAsSuchNotAsAProcessCount() {
        for (int degree : new int[] {0, -2}) {
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> Parallelism.of(SingleProcess.INSTANCE, degree));
            assertEquals(
                    "tensorParallelDegree must be >= 1 (the ranks each model is split across), got "
                            + degree,
                    e.getMessage());
        }
    }
}
