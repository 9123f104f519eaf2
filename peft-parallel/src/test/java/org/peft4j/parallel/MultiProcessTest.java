package org.peft4j.parallel;

import org.junit.jupiter.api.Test;
import org.peft4j.parallel.testing.MpiLauncher;

/** Runs this module's tests tagged {@code mpi} on two processes under {@code mpirun}. */
class MultiProcessTest {

    @Test
    void mpiTestsPassOnTwoRanks() throws Exception {
        MpiLauncher.run(2, "org.peft4j.parallel");
    }
}
