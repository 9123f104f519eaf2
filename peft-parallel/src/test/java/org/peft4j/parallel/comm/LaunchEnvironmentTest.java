package org.peft4j.parallel.comm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.util.Map;

class LaunchEnvironmentTest {

    @Test
    void readsEachLaunchersVariables() {
        LaunchEnvironment mpi =
                LaunchEnvironment.of(
                        Map.of(
                                "OMPI_COMM_WORLD_RANK", "3",
                                "OMPI_COMM_WORLD_SIZE", "4",
                                "OMPI_COMM_WORLD_LOCAL_RANK", "1"));
        assertEquals("mpirun", mpi.getLauncher());
        assertEquals(3, mpi.getRank());
        assertEquals(4, mpi.getWorldSize());
        assertEquals(1, mpi.getLocalRank());
        LaunchEnvironment slurm =
                LaunchEnvironment.of(Map.of("SLURM_PROCID", "2", "SLURM_NTASKS", "8"));
        assertEquals("slurm", slurm.getLauncher());
        assertEquals(2, slurm.getLocalRank(), "without a local id the rank picks the device");
        LaunchEnvironment torchrun =
                LaunchEnvironment.of(Map.of("RANK", "0", "WORLD_SIZE", "2", "LOCAL_RANK", "0"));
        assertEquals("torchrun", torchrun.getLauncher());
        LaunchEnvironment none = LaunchEnvironment.of(Map.of("RANK", "1"));
        assertEquals(1, none.getWorldSize());
        assertEquals(0, none.getRank());
    }

    @Test
    void badValuesNameTheVariable() {
        IllegalArgumentException notANumber =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> LaunchEnvironment.of(Map.of("PMI_RANK", "x", "PMI_SIZE", "2")));
        assertTrue(notANumber.getMessage().contains("PMI_RANK"), notANumber.getMessage());
        IllegalArgumentException outside =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> LaunchEnvironment.of(Map.of("RANK", "2", "WORLD_SIZE", "2")));
        assertTrue(outside.getMessage().contains("WORLD_SIZE=2"), outside.getMessage());
    }
}
