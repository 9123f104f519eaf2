package org.peft4j.parallel.comm;

import com.sun.jna.Library;
import com.sun.jna.Native;

/** Loads NCCL and the CUDA runtime on first use, with a message that says what to install. */
final class NativeLibraries {

    private static NcclLibrary nccl;
    private static CudaRuntime cuda;

    private NativeLibraries() {}

    static synchronized NcclLibrary nccl() {
        if (nccl == null) {
            nccl =
                    load(
                            NcclLibrary.class,
                            "peft4j.nccl.library",
                            new String[] {"nccl", "libnccl.so.2"},
                            "NCCL (libnccl.so.2): install NVIDIA's libnccl2 package or use the one"
                                    + " a CUDA build of PyTorch ships");
        }
        return nccl;
    }

    static synchronized CudaRuntime cuda() {
        if (cuda == null) {
            cuda =
                    load(
                            CudaRuntime.class,
                            "peft4j.cudart.library",
                            new String[] {"cudart", "libcudart.so.12", "libcudart.so.11.0"},
                            "the CUDA runtime (libcudart): install the CUDA toolkit's runtime");
        }
        return cuda;
    }

    private static <T extends Library> T load(
            Class<T> type, String property, String[] defaults, String what) {
        String configured = System.getProperty(property);
        String[] names = configured != null ? new String[] {configured} : defaults;
        UnsatisfiedLinkError last = null;
        for (String name : names) {
            try {
                return Native.load(name, type);
            } catch (UnsatisfiedLinkError e) {
                last = e;
            }
        }
        throw new IllegalStateException(
                "cannot load "
                        + what
                        + ", or name the library with -D"
                        + property
                        + "=PATH; on CPUs use MpiCommunicator instead ("
                        + last.getMessage()
                        + ')',
                last);
    }
}
