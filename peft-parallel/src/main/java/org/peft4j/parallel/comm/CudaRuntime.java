package org.peft4j.parallel.comm;

import com.sun.jna.Library;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;

/** The functions of the CUDA runtime that {@link NcclCommunicator} calls, bound with JNA. */
public interface CudaRuntime extends Library {

    /**
     * {@code cudaGetDeviceCount}.
     *
     * @param count receives the number of devices
     * @return a {@code cudaError_t}
     */
    int cudaGetDeviceCount(IntByReference count);

    /**
     * {@code cudaSetDevice}.
     *
     * @param device the device index
     * @return a {@code cudaError_t}
     */
    int cudaSetDevice(int device);

    /**
     * {@code cudaStreamSynchronize}.
     *
     * @param stream the stream, null for the legacy default stream
     * @return a {@code cudaError_t}
     */
    int cudaStreamSynchronize(Pointer stream);

    /**
     * {@code cudaGetErrorString}.
     *
     * @param error a {@code cudaError_t}
     * @return its description
     */
    String cudaGetErrorString(int error);
}
