package org.peft4j.cli;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Platform;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps glibc's allocator from returning large tensors' memory to the system after every step.
 *
 * <p>By default glibc serves allocations above a threshold (at most 32 MB) with {@code mmap} and
 * unmaps them on free, so a tensor of that size allocated in every step is page-faulted in anew
 * every step (seen here: 25% of a forward pass of the benchmark's small Llama), and memory also
 * shrinks and grows by turns. Disabling {@code mmap} for allocations and raising the trim threshold
 * makes freed tensors' memory reused in place: faster steps, and resident memory that stays at its
 * working size. The same settings are the environment variables {@code MALLOC_MMAP_MAX_=0
 * MALLOC_TRIM_THRESHOLD_=2147483647}, for programs that use the library without this command line.
 */
final class MallocTuning {

    private static final Logger logger = LoggerFactory.getLogger(MallocTuning.class);
    private static final int M_TRIM_THRESHOLD = -1;
    private static final int M_MMAP_MAX = -4;

    private MallocTuning() {}

    /** glibc's {@code mallopt}. */
    interface C extends Library {
        int mallopt(int param, int value);
    }

    /** Applies the settings, unless {@code PEFT4J_MALLOC_TUNING=0} or not on glibc Linux. */
    static void apply() {
        if ("0".equals(System.getenv("PEFT4J_MALLOC_TUNING")) || !Platform.isLinux()) {
            return;
        }
        try {
            C c = Native.load("c", C.class);
            boolean ok = c.mallopt(M_MMAP_MAX, 0) == 1;
            ok &= c.mallopt(M_TRIM_THRESHOLD, Integer.MAX_VALUE) == 1;
            logger.debug("malloc tuning {}", ok ? "applied" : "refused by the C library");
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            logger.debug("malloc tuning not available: {}", e.toString());
        }
    }
}
