package org.peft4j.train;

import org.junit.jupiter.api.Test;
import org.peft4j.parallel.testing.MpiLauncher;

/** Runs the tensor-parallel Llama tests (tagged {@code mpi}) on two processes under mpirun. */
class MultiProcessLlamaTest {

    @Test
    void mpiTestsPassOnTwoRanks() throws Exception {
        MpiLauncher.run(2, "org.peft4j.train");
    }
}
